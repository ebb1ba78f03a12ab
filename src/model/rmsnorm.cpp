#include "model/rmsnorm.hpp"

#include "backend/cpu/rmsnorm.hpp"

namespace moelab {

template <typename T>
void rmsnorm_forward(Tensor<T>& y, Tensor<T>& inv_rms, const Tensor<T>& x, const Param<T>& w, double eps) {
  const int64_t dim = w.value.numel(), rows = x.numel() / dim;
  MOE_CHECK(rows * dim == x.numel()) << w.name << ": input " << shape_str(x.shape) << " does not end in " << dim;
  prepare(y, x.shape);
  prepare(inv_rms, {rows});
  cpu::rmsnorm_forward(y.ptr(), inv_rms.ptr(), x.ptr(), w.value.ptr(), rows, dim, eps);
}

template <typename T>
void rmsnorm_backward(Tensor<T>& dx, Param<T>& w, const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& inv_rms) {
  const int64_t dim = w.value.numel(), rows = x.numel() / dim;
  prepare(dx, x.shape);
  cpu::rmsnorm_backward(dx.ptr(), w.grad.ptr(), dy.ptr(), x.ptr(), w.value.ptr(), inv_rms.ptr(), rows, dim);
}

template void rmsnorm_forward<float>(Tensor<float>&, Tensor<float>&, const Tensor<float>&, const Param<float>&, double);
template void rmsnorm_forward<double>(Tensor<double>&, Tensor<double>&, const Tensor<double>&, const Param<double>&,
                                      double);
template void rmsnorm_backward<float>(Tensor<float>&, Param<float>&, const Tensor<float>&, const Tensor<float>&,
                                      const Tensor<float>&);
template void rmsnorm_backward<double>(Tensor<double>&, Param<double>&, const Tensor<double>&, const Tensor<double>&,
                                       const Tensor<double>&);

}  // namespace moelab
