#ifndef PTD_TESTS_TESTING_TESTING_INL_H_
#define PTD_TESTS_TESTING_TESTING_INL_H_

#include <thread>

namespace ptd::testing {

template <typename F>
bool WaitFor(F ready, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace ptd::testing

#endif  // PTD_TESTS_TESTING_TESTING_INL_H_
