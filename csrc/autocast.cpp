// libtorch's automatic mixed precision ("autocast") for one device type and one reduced
// type, which tch 0.24 does not expose (it only switches CUDA's autocast with its default
// type, float16). Used by src/train/amp.rs; compiled by build.rs for the engine build.
#include <ATen/autocast_mode.h>

#include <cstring>
#include <exception>

namespace {
c10::DeviceType device_type(int cuda) { return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }

void copy_message(const char *what, char *message, int capacity) {
  if (capacity > 0) {
    std::strncpy(message, what, static_cast<size_t>(capacity) - 1);
    message[capacity - 1] = '\0';
  }
}
}  // namespace

extern "C" {

// Turns autocast on for CUDA (`cuda` != 0) or the CPU with bfloat16 (`half` == 0) or
// float16 as the reduced type. 0 on success, else -1 with libtorch's message.
int ktlab_autocast_enter(int cuda, int half, char *message, int capacity) {
  try {
    auto device = device_type(cuda);
    at::autocast::set_autocast_dtype(device, half ? at::kHalf : at::kBFloat16);
    at::autocast::set_autocast_enabled(device, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (const std::exception &e) {
    copy_message(e.what(), message, capacity);
    return -1;
  }
}

// Turns it off again, and frees the cast weights it cached once the outermost region ends.
void ktlab_autocast_exit(int cuda) {
  try {
    at::autocast::set_autocast_enabled(device_type(cuda), false);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
  } catch (...) {
  }
}

// Whether autocast is on for that device type (for tests).
int ktlab_autocast_is_enabled(int cuda) {
  try {
    return at::autocast::is_autocast_enabled(device_type(cuda)) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}
}
