#include "support/publisher.h"

#include <atomic>
#include <stdexcept>
#include <unistd.h>

#include <mqtt/async_client.h>

namespace ioc_edge::test {

namespace {
constexpr auto kTimeout = std::chrono::seconds(10);

std::string unique_client_id() {
  static std::atomic<int> counter{0};
  return "test-publisher-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}
}  // namespace

struct Publisher::Impl {
  Impl(int port, const std::string& ca, const std::string& cert, const std::string& key)
      : client("ssl://127.0.0.1:" + std::to_string(port), unique_client_id(), mqtt::create_options(MQTTVERSION_5),
               nullptr) {
    auto ssl = mqtt::ssl_options_builder().trust_store(ca).key_store(cert).private_key(key).verify(true).finalize();
    auto opts = mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)
                    .clean_start(true)
                    .connect_timeout(std::chrono::seconds(5))
                    .ssl(std::move(ssl))
                    .finalize();
    auto tok = client.connect(opts);
    if (!tok->wait_for(kTimeout)) throw std::runtime_error("Publisher: connect timed out");
  }
  ~Impl() {
    try {
      client.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const std::exception&) {
    }
  }
  mqtt::async_client client;
};

Publisher::Publisher(int port, const std::string& ca, const std::string& cert, const std::string& key)
    : impl_(std::make_unique<Impl>(port, ca, cert, key)) {}
Publisher::~Publisher() = default;

int Publisher::publish(const std::string& topic, const std::string& payload, bool retain,
                       const std::vector<std::pair<std::string, std::string>>& user_properties) {
  auto msg = mqtt::make_message(topic, payload, 1, retain);
  if (!user_properties.empty()) {
    mqtt::properties props;
    for (const auto& [k, v] : user_properties) props.add(mqtt::property(mqtt::property::USER_PROPERTY, k, v));
    msg->set_properties(props);
  }
  auto tok = impl_->client.publish(msg);
  try {
    if (!tok->wait_for(kTimeout)) throw std::runtime_error("Publisher: no PUBACK for " + topic);
  } catch (const mqtt::exception& e) {
    // Paho fails the token of an MQTT 5 PUBACK with a reason code of 0x80 or more.
    if (e.get_reason_code() >= 0x80) return e.get_reason_code();
    throw;
  }
  return tok->get_reason_code();
}

}  // namespace ioc_edge::test
