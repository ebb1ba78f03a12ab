#include "backend/device.hpp"

#include "core/error.hpp"

#ifdef MOELAB_HAVE_CUDA
#include "kernels/device.hpp"
#endif

namespace moelab {

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  MOE_FAIL() << "--device '" << name << "': expected cpu or cuda";
}

void require_device(Device device) {
  if (device == Device::cpu) return;
#ifdef MOELAB_HAVE_CUDA
  MOE_CHECK(cuda::device_count() > 0) << "--device cuda: " << cuda::device_description();
#else
  MOE_FAIL() << "--device cuda: this moelab was built without CUDA (configure with nvcc present and MOELAB_CUDA=ON)";
#endif
}

std::string device_name(Device device) {
#ifdef MOELAB_HAVE_CUDA
  if (device == Device::cuda) return cuda::device_description();
#endif
  return device == Device::cpu ? "cpu" : "cuda";
}

}  // namespace moelab
