#pragma once
// A test publisher: an office (or an impostor) publishing by hand on the test broker (Paho C++,
// MQTT 5, mutual TLS with the given certificate). publish() waits for the broker's PUBACK and
// returns its reason code (0 stored, 0x10 no subscribers, >= 0x80 refused).
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ioc_edge::test {

class Publisher {
 public:
  // Connects to 127.0.0.1:port as the holder of cert/key (signed by ca); throws on failure.
  Publisher(int port, const std::string& ca, const std::string& cert, const std::string& key);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // QoS 1; MQTT 5 user properties in order. Returns the PUBACK reason code; throws on a timeout.
  int publish(const std::string& topic, const std::string& payload, bool retain = false,
              const std::vector<std::pair<std::string, std::string>>& user_properties = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ioc_edge::test
