// Collector: the IOC stand-in's consumer (Paho C++ async client, MQTT v5, mutual TLS).
#include "support.h"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unistd.h>

#include <mqtt/async_client.h>

namespace ioc_edge::test {
namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kDisconnectTimeout = std::chrono::seconds(5);

std::string unique_client_id() {
  static std::atomic<int> counter{0};
  return "ioc-collector-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

}  // namespace

struct Collector::Impl {
  Impl(int broker_port, const Certs& certs, const std::string& topic_filter)
      : filter(topic_filter),
        client("ssl://127.0.0.1:" + std::to_string(broker_port), unique_client_id(),
               mqtt::create_options(MQTTVERSION_5), nullptr) {
    client.set_message_callback([this](mqtt::const_message_ptr msg) { on_message(*msg); });
    client.set_connected_handler([this](const std::string&) {
      connects.fetch_add(1);
      // After an automatic reconnect the clean-start session has no subscription any more.
      if (subscribed_once.load()) {
        try {
          client.subscribe(filter, 1);
        } catch (const std::exception&) {
          // Nothing to do on Paho's thread; connected()/messages tell the test what happened.
        }
      }
    });

    auto ssl = mqtt::ssl_options_builder()
                   .trust_store(certs.ca)
                   .key_store(certs.client_cert)
                   .private_key(certs.client_key)
                   .enable_server_cert_auth(true)
                   .verify(true)  // host name / IP against the SAN; off by default in Paho
                   // No .error_handler(): in Paho C++ 1.2.0 its context pointer dangles once the
                   // options are copied (paho.mqtt.cpp #325, #439); ASan shows the use after
                   // scope on the first TLS failure. The failure reason is therefore only "-1".
                   .finalize();
    auto opts = mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)  // before clean_start: it resets the flag
                    .clean_start(true)
                    .keep_alive_interval(std::chrono::seconds(10))
                    .connect_timeout(std::chrono::seconds(5))
                    .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(2))
                    .ssl(std::move(ssl))
                    .finalize();

    const std::string where = "Collector on 127.0.0.1:" + std::to_string(broker_port);
    try {
      auto tok = client.connect(opts);
      if (!tok->wait_for(kConnectTimeout)) throw std::runtime_error("connect timed out");
      auto sub = client.subscribe(filter, 1);
      if (!sub->wait_for(kConnectTimeout)) throw std::runtime_error("subscribe timed out");
      const auto codes = sub->get_subscribe_response().get_reason_codes();
      if (codes.empty() || codes.front() != mqtt::GRANTED_QOS_1) {
        throw std::runtime_error("subscribe to '" + filter + "' not granted QoS 1");
      }
      subscribed_once.store(true);
    } catch (const std::exception& e) {
      throw std::runtime_error(where + ": " + e.what());
    }
  }

  ~Impl() {
    try {
      client.disconnect()->wait_for(kDisconnectTimeout);
    } catch (const std::exception&) {
      // Not connected (broker gone): destroying the client below is all that is left.
    }
  }

  void on_message(const mqtt::message& msg) {
    Message m;
    m.topic = msg.get_topic();
    m.payload = msg.get_payload_str();
    m.retained = msg.is_retained();
    m.received_at = std::chrono::system_clock::now();
    const mqtt::properties& props = msg.get_properties();
    const std::size_t n = props.count(mqtt::property::USER_PROPERTY);
    for (std::size_t i = 0; i < n; ++i) {
      auto [name, value] = mqtt::get<mqtt::string_pair>(props, mqtt::property::USER_PROPERTY, i);
      m.user_properties.emplace_back(std::move(name), std::move(value));
    }
    std::lock_guard lock(mu);
    messages.push_back(std::move(m));
  }

  // Parses the data batches that arrived since the last call (caller holds mu).
  void parse_new_data() const {
    for (; parsed < messages.size(); ++parsed) {
      const Message& m = messages[parsed];
      if (m.topic.find("/data/") == std::string::npos) continue;
      try {
        const auto batch = nlohmann::json::parse(m.payload);
        const auto& readings = batch.at("readings");
        if (!readings.is_array()) throw std::runtime_error("\"readings\" is not an array");
        for (const auto& r : readings) {
          seqs.insert(r.at("seq").get<std::int64_t>());
          ++readings_total;
        }
      } catch (const std::exception& e) {
        throw std::runtime_error("Collector: message " + std::to_string(parsed) + " on '" +
                                 m.topic + "' is not a data batch: " + e.what());
      }
    }
  }

  const std::string filter;
  mutable std::mutex mu;
  std::vector<Message> messages;               // guarded by mu
  mutable std::size_t parsed = 0;              // guarded by mu: messages[0, parsed) are counted
  mutable std::set<std::int64_t> seqs;         // guarded by mu
  mutable std::size_t readings_total = 0;      // guarded by mu
  std::atomic<int> connects{0};
  std::atomic<bool> subscribed_once{false};
  // Last member: destroyed first, so its callbacks never see the members above destroyed.
  mqtt::async_client client;
};

Collector::Collector(int broker_port, const Certs& certs, const std::string& topic_filter)
    : impl_(std::make_unique<Impl>(broker_port, certs, topic_filter)) {}

Collector::~Collector() = default;

std::vector<Collector::Message> Collector::messages() const {
  std::lock_guard lock(impl_->mu);
  return impl_->messages;
}

std::size_t Collector::message_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->messages.size();
}

std::set<std::int64_t> Collector::data_seqs() const {
  std::lock_guard lock(impl_->mu);
  impl_->parse_new_data();
  return impl_->seqs;
}

std::size_t Collector::distinct_data_seqs() const {
  std::lock_guard lock(impl_->mu);
  impl_->parse_new_data();
  return impl_->seqs.size();
}

std::size_t Collector::data_readings() const {
  std::lock_guard lock(impl_->mu);
  impl_->parse_new_data();
  return impl_->readings_total;
}

std::vector<nlohmann::json> Collector::json_on(const std::string& topic_substring) const {
  std::vector<std::pair<std::string, std::string>> matching;  // topic, payload
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& m : impl_->messages) {
      if (m.topic.find(topic_substring) != std::string::npos) matching.emplace_back(m.topic, m.payload);
    }
  }
  std::vector<nlohmann::json> out;
  out.reserve(matching.size());
  for (const auto& [topic, payload] : matching) {
    if (payload.empty()) {
      out.emplace_back(nullptr);
      continue;
    }
    try {
      out.push_back(nlohmann::json::parse(payload));
    } catch (const std::exception& e) {
      throw std::runtime_error("Collector: payload on '" + topic + "' is not JSON: " + e.what());
    }
  }
  return out;
}

void Collector::clear() {
  std::lock_guard lock(impl_->mu);
  impl_->messages.clear();
  impl_->parsed = 0;
  impl_->seqs.clear();
  impl_->readings_total = 0;
}

bool Collector::connected() const { return impl_->client.is_connected(); }

int Collector::connects() const { return impl_->connects.load(); }

}  // namespace ioc_edge::test
