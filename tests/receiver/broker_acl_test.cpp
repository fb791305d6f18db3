// receiver/broker/acl against a real Mosquitto 2: who may publish and read what on the IOC's broker.
// The broker loads the repository's own ACL file, not a copy, so a change that breaks it fails
// here. Every client is Paho C++ over MQTT 5 with mutual TLS; its certificate's CN is its MQTT user
// name (tests/support/mosquitto.cpp sets use_identity_as_username): bk-cho-don and bk-na-ri are
// offices, ioc-receiver-1 a receiver, ioc-commander the IOC's command sender.
//
// "Never receives" is proven with order, not with time: the forbidden message is refused or sent
// first, then a message the same subscriber may read, and once that one arrived the forbidden one
// can no longer be on its way (each publish has been answered before the next is sent, and the
// broker routes a message before it answers).
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <mqtt/async_client.h>

#include "support/support.h"

using namespace ioc_edge::test;
using namespace std::chrono_literals;

namespace {

constexpr int kNotAuthorized = 0x87;  // MQTT 5 PUBACK reason code: the ACL refused the topic
constexpr auto kTimeout = 10s;

// The ACL under test: the file the IOC installs.
std::string acl_file() { return repo_root() + "/receiver/broker/acl"; }

// One MQTT 5 client holding one certificate: publishes at QoS 1 and returns the broker's PUBACK
// reason code, subscribes, and keeps what it receives. Paho's callback thread only appends to
// the list; every method is called from the test thread.
class Client {
 public:
  struct Message {
    std::string topic, payload;
    bool retained = false;
  };

  Client(int port, const Certs& certs, const std::string& cert, const std::string& key)
      : name_(cert.substr(cert.find_last_of('/') + 1)),
        client_("ssl://127.0.0.1:" + std::to_string(port), unique_client_id(), mqtt::create_options(MQTTVERSION_5),
                nullptr) {
    client_.set_message_callback([this](mqtt::const_message_ptr m) {
      std::lock_guard lock(mu_);
      messages_.push_back({m->get_topic(), m->get_payload_str(), m->is_retained()});
    });
    auto ssl = mqtt::ssl_options_builder()
                   .trust_store(certs.ca)
                   .key_store(cert)
                   .private_key(key)
                   .enable_server_cert_auth(true)
                   .verify(true)
                   .finalize();
    auto opts = mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)  // before clean_start: it resets the flag
                    .clean_start(true)
                    .keep_alive_interval(10s)
                    .connect_timeout(5s)
                    .ssl(std::move(ssl))
                    .finalize();
    try {
      if (!client_.connect(opts)->wait_for(kTimeout)) throw std::runtime_error("connect timed out");
    } catch (const std::exception& e) {
      throw std::runtime_error(name_ + ": " + e.what());
    }
  }

  ~Client() {
    try {
      client_.disconnect()->wait_for(5s);
    } catch (const std::exception&) {
      // Already disconnected: destroying the client is all that is left.
    }
  }

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The PUBACK reason code: below 0x80 the broker stored the message (0x10: no subscriber matched),
  // 0x80 and above it refused it. Throws if the broker did not answer.
  int publish(const std::string& topic, const std::string& payload, bool retained = false) {
    auto tok = client_.publish(mqtt::make_message(topic, payload.data(), payload.size(), 1, retained));
    try {
      if (!tok->wait_for(kTimeout)) throw std::runtime_error(name_ + ": no PUBACK for " + topic + " within 10 s");
    } catch (const mqtt::exception&) {
      // Paho C++ 1.2 throws for every reason code above 2, 0x10 included; the code is on the token.
    }
    // A refusal comes with return code 0 and the PUBACK's reason code; anything else is no answer.
    if (tok->get_return_code() != MQTTASYNC_SUCCESS)
      throw std::runtime_error(name_ + ": publish on " + topic + " failed with return code " +
                               std::to_string(tok->get_return_code()));
    return static_cast<int>(tok->get_reason_code());
  }

  // Subscribes at QoS 1 and returns the SUBACK reason code (1: granted QoS 1).
  int subscribe(const std::string& filter) {
    auto tok = client_.subscribe(filter, 1);
    try {
      if (!tok->wait_for(kTimeout)) throw std::runtime_error(name_ + ": no SUBACK for " + filter + " within 10 s");
    } catch (const mqtt::exception&) {
      // A refused subscription: its reason code is on the token.
    }
    return static_cast<int>(tok->get_reason_code());
  }

  std::vector<Message> messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }

  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (const auto& m : messages()) out.push_back(m.payload);
    return out;
  }

  bool received(const std::string& payload) const {
    for (const auto& m : messages())
      if (m.payload == payload) return true;
    return false;
  }

 private:
  static std::string unique_client_id() {
    static std::atomic<int> counter{0};
    return "broker-acl-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  }

  std::string name_;
  mutable std::mutex mu_;
  std::vector<Message> messages_;  // guarded by mu_
  // Last member: destroyed first, so its callbacks never see the members above destroyed.
  mqtt::async_client client_;
};

// The payloads a Collector received, in arrival order.
std::vector<std::string> payloads(const Collector& c) {
  std::vector<std::string> out;
  for (const auto& m : c.messages()) out.push_back(m.payload);
  return out;
}

// The test certificates with another identity as the client certificate, for a Collector.
Certs as(const Certs& certs, const std::string& cert, const std::string& key) {
  Certs c = certs;
  c.client_cert = cert;
  c.client_key = key;
  return c;
}

// A client certificate with common name `cn`, signed by the test CA (scripts/make-certs.sh leaves
// ca.key next to ca.pem): {certificate, key} in `dir`. For the identities only these tests use.
std::pair<std::string, std::string> issue_client_cert(const Certs& certs, const TempDir& dir, const std::string& name,
                                                      const std::string& cn) {
  static int serial = 0;
  const auto key = dir.file(name + ".key"), csr = dir.file(name + ".csr"), cert = dir.file(name + ".pem"),
             ext = dir.file(name + ".ext"), log = dir.file("openssl.log");
  std::string subject = "/O=ioc-edge tests/CN=";
  for (const char ch : cn) {
    if (ch == '/' || ch == '+' || ch == '=' || ch == '\\') subject += '\\';  // literal in -subj
    subject += ch;
  }
  write_file(ext, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key},
      {"openssl", "req", "-new", "-sha256", "-key", key, "-subj", subject, "-out", csr},
      {"openssl", "x509", "-req", "-sha256", "-days", "2", "-in", csr, "-CA", certs.ca, "-CAkey", certs.dir + "/ca.key",
       "-set_serial", std::to_string(0x7e000000 + ++serial), "-extfile", ext, "-out", cert}};
  for (const auto& argv : steps)
    if (run_to_exit(argv, log, 30s) != 0) throw std::runtime_error("openssl failed for CN " + cn + ":\n" + read_file(log));
  return {cert, key};
}

// A broker with the IOC's ACL and the test PKI.
struct AclRig {
  AclRig() : certs(make_certs(tmp.file("certs"))) {
    REQUIRE(std::filesystem::exists(acl_file()));
    MosquittoOptions o;
    o.extra_config = "acl_file " + acl_file() + "\n";
    broker = std::make_unique<Mosquitto>(certs, tmp.file("broker"), o);
  }

  int port() const { return broker->port(); }
  std::unique_ptr<Client> office_a() { return std::make_unique<Client>(port(), certs, certs.office_a_cert, certs.office_a_key); }
  std::unique_ptr<Client> office_b() { return std::make_unique<Client>(port(), certs, certs.office_b_cert, certs.office_b_key); }
  std::unique_ptr<Client> receiver() { return std::make_unique<Client>(port(), certs, certs.receiver_cert, certs.receiver_key); }
  // ioc-receiver's way in: a Collector with the receiver's certificate.
  std::unique_ptr<Collector> receiver_collector(const std::string& filter) {
    return std::make_unique<Collector>(port(), as(certs, certs.receiver_cert, certs.receiver_key), filter);
  }

  TempDir tmp;
  Certs certs;
  std::unique_ptr<Mosquitto> broker;
};

const std::string kDataA = "ioc/bac-kan/bk-cho-don/data/tram-bom-1";
const std::string kDataB = "ioc/bac-kan/bk-na-ri/data/tram-bom-1";
const std::string kCmdA = "ioc/bac-kan/bk-cho-don/cmd/reboot";
const std::string kCmdB = "ioc/bac-kan/bk-na-ri/cmd/reboot";
const std::string kStatusA = "ioc/bac-kan/bk-cho-don/status";
const std::string kStatusB = "ioc/bac-kan/bk-na-ri/status";

}  // namespace

TEST_CASE("broker ACL: an office publishes its own topics and nothing of another office's",
          "[integration][receiver][broker_acl]") {
  AclRig rig;
  // The receivers' shared subscription: what the IOC stores.
  auto ioc = rig.receiver_collector("$share/ioc-receivers/ioc/+/+/data/#");
  auto a = rig.office_a();

  CHECK(a->publish(kDataA, "a-1") == 0);                                           // to a subscriber
  CHECK(a->publish(kDataB, "a-as-b") == kNotAuthorized);                           // as another office
  CHECK(a->publish(kCmdA, "a-own-cmd") == kNotAuthorized);                         // commands come from the IOC
  CHECK(a->publish("ioc/thai-nguyen/bk-cho-don/data/tram-bom-1", "a-other-province") == 0);  // after a merger
  // The rest of what an office sends is stored (below 0x80; 0x10: nobody subscribed here).
  CHECK(a->publish("ioc/bac-kan/bk-cho-don/event/_gateway", "a-event") < 0x80);
  CHECK(a->publish("ioc/bac-kan/bk-cho-don/blob/camera-1", "a-blob") < 0x80);
  CHECK(a->publish(kStatusA, "a-status", true) < 0x80);
  CHECK(a->publish("ioc/bac-kan/bk-cho-don/cmd-result/42", "a-cmd-result") < 0x80);
  // Only the documented topics (docs/design.md section 4), not anything under its site id.
  CHECK(a->publish("ioc/bac-kan/bk-cho-don/data/tram-bom-1/extra", "a-deeper") == kNotAuthorized);
  CHECK(a->publish("ioc/bac-kan/bk-cho-don/other", "a-other") == kNotAuthorized);

  // The refused message never reaches the IOC: a later one of A's does, and nothing else came.
  CHECK(a->publish(kDataA, "a-2") == 0);
  REQUIRE(wait_until([&] { return ioc->message_count() >= 3; }, kTimeout));
  CHECK(payloads(*ioc) == std::vector<std::string>{"a-1", "a-other-province", "a-2"});
}

TEST_CASE("broker ACL: an office reads the commands addressed to it and nothing of another office's",
          "[integration][receiver][broker_acl]") {
  AclRig rig;
  const auto [commander_cert, commander_key] = issue_client_cert(rig.certs, rig.tmp, "commander", "ioc-commander");
  Client commander(rig.port(), rig.certs, commander_cert, commander_key);
  auto a = rig.office_a();
  auto b = rig.office_b();
  CHECK(b->publish(kStatusB, "b-status", true) < 0x80);  // retained before A subscribes

  // Subscribing is never refused (Mosquitto 2.0 checks each delivery, not the filter), so A asks
  // for everything and may still get only its own commands.
  a->subscribe("ioc/#");
  REQUIRE(b->subscribe("ioc/+/bk-na-ri/cmd/#") == 1);
  CHECK(b->publish(kDataB, "b-data") < 0x80);  // stored; A's ioc/# matches it, but A may not read it
  CHECK(commander.publish(kCmdB, "cmd-for-b") == 0);
  CHECK(commander.publish(kCmdA, "cmd-for-a") == 0);
  CHECK(commander.publish(kDataA, "commander-as-a") == kNotAuthorized);  // it sends commands only

  REQUIRE(wait_until([&] { return a->received("cmd-for-a") && b->received("cmd-for-b"); }, kTimeout));
  const auto got = a->messages();
  REQUIRE(got.size() == 1);  // nothing of B's: not its retained status, data or commands
  CHECK(got[0].topic == kCmdA);
  CHECK(b->payloads() == std::vector<std::string>{"cmd-for-b"});
}

TEST_CASE("broker ACL: a receiver reads every office through a shared subscription and writes nothing",
          "[integration][receiver][broker_acl]") {
  AclRig rig;
  auto a = rig.office_a();
  auto b = rig.office_b();
  CHECK(a->publish(kStatusA, "a-status", true) < 0x80);
  CHECK(b->publish(kStatusB, "b-status", true) < 0x80);

  // ioc-receiver's subscriptions (receiver/service.cpp): data, event and blob shared, status not.
  auto data = rig.receiver_collector("$share/ioc-receivers/ioc/+/+/data/#");
  auto events = rig.receiver_collector("$share/ioc-receivers/ioc/+/+/event/#");
  auto status = rig.receiver_collector("ioc/+/+/status");
  CHECK(a->publish(kDataA, "a-data") == 0);
  CHECK(b->publish(kDataB, "b-data") == 0);
  CHECK(a->publish("ioc/bac-kan/bk-cho-don/event/_gateway", "a-event") == 0);
  CHECK(b->publish("ioc/bac-kan/bk-na-ri/event/tram-bom-1", "b-event") == 0);

  REQUIRE(wait_until([&] { return data->message_count() >= 2 && events->message_count() >= 2 && status->message_count() >= 2; },
                     kTimeout));
  CHECK(payloads(*data) == std::vector<std::string>{"a-data", "b-data"});
  CHECK(payloads(*events) == std::vector<std::string>{"a-event", "b-event"});
  const auto heartbeats = status->messages();
  REQUIRE(heartbeats.size() == 2);
  for (const auto& m : heartbeats) {
    INFO(m.topic);
    CHECK(m.retained);
    CHECK((m.topic == kStatusA || m.topic == kStatusB));
  }

  // A receiver writes nothing: not as an office, not under its own name, no commands.
  auto r = rig.receiver();
  CHECK(r->publish(kDataA, "r-as-a") == kNotAuthorized);
  CHECK(r->publish("ioc/bac-kan/ioc-receiver-1/data/tram-bom-1", "r-own-name") == kNotAuthorized);
  CHECK(r->publish(kCmdA, "r-cmd") == kNotAuthorized);
  CHECK(r->publish(kStatusA, "", true) == kNotAuthorized);  // nor clear an office's heartbeat
}

// Not a rule of our file but a guard of Mosquitto's that the file relies on (a CN "+" would turn
// ioc/+/%u/data/+ into ioc/+/+/data/+): it must still hold after a Mosquitto upgrade.
TEST_CASE("broker ACL: a certificate whose name holds + or # may publish nothing", "[integration][receiver][broker_acl]") {
  AclRig rig;
  auto ioc = rig.receiver_collector("$share/ioc-receivers/ioc/+/+/data/#");
  int n = 0;
  for (const std::string cn : {"+", "#", "evil+"}) {
    INFO("CN " << cn);
    const auto [cert, key] = issue_client_cert(rig.certs, rig.tmp, "wild-" + std::to_string(++n), cn);
    Client wild(rig.port(), rig.certs, cert, key);
    CHECK(wild.publish(kDataB, "wild-as-b") == kNotAuthorized);
  }
  auto b = rig.office_b();
  CHECK(b->publish(kDataB, "b-data") == 0);
  REQUIRE(wait_until([&] { return ioc->message_count() >= 1; }, kTimeout));
  CHECK(payloads(*ioc) == std::vector<std::string>{"b-data"});
}
