// The only translation unit that needs the build-time paths, so only it needs the definitions.
#include "support.h"

#include <cstdlib>
#include <stdexcept>

#ifndef IOC_EDGE_SOURCE_DIR
#error "tests/support needs -DIOC_EDGE_SOURCE_DIR=\"<source tree>\""
#endif
#ifndef IOC_EDGE_BINARY
#error "tests/support needs -DIOC_EDGE_BINARY=\"<path of the ioc-edge executable>\""
#endif
#ifndef IOC_EDGE_MAN_PAGE
#error "tests/support needs -DIOC_EDGE_MAN_PAGE=\"<path of the built ioc-edge.8>\""
#endif

namespace ioc_edge::test {

std::string repo_root() { return IOC_EDGE_SOURCE_DIR; }

// IOC_EDGE_BINARY in the environment runs the same tests against another build (benchmarks
// compare two versions this way).
std::string ioc_edge_binary() {
  const char* other = std::getenv("IOC_EDGE_BINARY");
  return other && *other ? other : IOC_EDGE_BINARY;
}

std::string ioc_edge_man_page() { return IOC_EDGE_MAN_PAGE; }

std::string ioc_receiver_binary() {
#ifdef IOC_RECEIVER_BINARY
  return IOC_RECEIVER_BINARY;
#else
  throw std::runtime_error("this build has no ioc-receiver (IOC_EDGE_RECEIVER=OFF)");
#endif
}

}  // namespace ioc_edge::test
