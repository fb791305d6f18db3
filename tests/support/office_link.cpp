// OfficeLink: a network namespace behind a shaped veth pair (see support.h).
#include "support.h"

#include <unistd.h>

#include <stdexcept>

namespace ioc_edge::test {

OfficeLink::OfficeLink(int rate_kbit, const std::string& log_file) : log_file_(log_file) {
  const int id = static_cast<int>(::getpid() % 16000);
  const auto tag = std::to_string(id);
  ns_ = "ioc-office-" + tag;
  host_if_ = "ioch" + tag;  // interface names are at most 15 characters
  office_if_ = "ioco" + tag;
  const int a = id / 64, b = (id % 64) * 4;
  host_ip_ = "10.77." + std::to_string(a) + "." + std::to_string(b + 1);
  office_ip_ = "10.77." + std::to_string(a) + "." + std::to_string(b + 2);
  // Leftovers of a killed run with the same pid would make the first step fail.
  run_to_exit({"ip", "netns", "del", ns_}, log_file_);
  run_to_exit({"ip", "link", "del", host_if_}, log_file_);
  const auto rate = std::to_string(rate_kbit) + "kbit";
  // A 400 ms queue at most: the tbf drops beyond it, as a real modem's buffer does.
  const std::vector<std::string> tbf = {"tbf", "rate", rate, "burst", "16kb", "latency", "400ms"};
  run({"ip", "netns", "add", ns_});
  run({"ip", "link", "add", host_if_, "type", "veth", "peer", "name", office_if_});
  run({"ip", "link", "set", office_if_, "netns", ns_});
  run({"ip", "addr", "add", host_ip_ + "/30", "dev", host_if_});
  run({"ip", "link", "set", host_if_, "up"});
  run({"ip", "-n", ns_, "addr", "add", office_ip_ + "/30", "dev", office_if_});
  run({"ip", "-n", ns_, "link", "set", "lo", "up"});
  run({"ip", "-n", ns_, "link", "set", office_if_, "up"});
  auto host_q = std::vector<std::string>{"tc", "qdisc", "add", "dev", host_if_, "root"};
  host_q.insert(host_q.end(), tbf.begin(), tbf.end());
  run(host_q);
  auto office_q = std::vector<std::string>{"ip", "netns", "exec", ns_, "tc", "qdisc", "add", "dev", office_if_, "root"};
  office_q.insert(office_q.end(), tbf.begin(), tbf.end());
  run(office_q);
}

OfficeLink::~OfficeLink() {
  try {
    run_to_exit({"ip", "netns", "del", ns_}, log_file_);
    run_to_exit({"ip", "link", "del", host_if_}, log_file_);
  } catch (...) {
    // Nothing more to do in a destructor; a leftover is removed by the next run's constructor.
  }
}

void OfficeLink::set_up(bool up) { run({"ip", "-n", ns_, "link", "set", office_if_, up ? "up" : "down"}); }

std::vector<std::string> OfficeLink::in_office(std::vector<std::string> argv) const {
  std::vector<std::string> out = {"ip", "netns", "exec", ns_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void OfficeLink::run(std::vector<std::string> argv) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  const int rc = run_to_exit(std::move(argv), log_file_);
  if (rc != 0) throw std::runtime_error("OfficeLink: `" + cmd + "` exited with " + std::to_string(rc) + ":\n" + read_file(log_file_));
}

}  // namespace ioc_edge::test
