#include "model/mlp.hpp"

#include "backend/cpu/swiglu.hpp"

namespace moelab {

template <typename T>
void mlp_forward(Tensor<T>& y, MlpSaved<T>& s, const MlpParams<T>& p, const Tensor<T>& x, GemmPrecision precision) {
  const int64_t H = p.hidden(), I = p.inner(), rows = x.numel() / H;
  s.x = x;
  prepare(s.gu, {rows, 2 * I});
  prepare(s.h, {rows, I});
  linear_forward(s.gu.ptr(), 2 * I, x.ptr(), H, rows, p.gate_proj->value, precision);
  linear_forward(s.gu.ptr() + I, 2 * I, x.ptr(), H, rows, p.up_proj->value, precision);
  cpu::swiglu_forward(s.h.ptr(), s.gu.ptr(), s.gu.ptr() + I, rows, I, 2 * I);
  prepare(y, {rows, H});
  linear_forward(y.ptr(), H, s.h.ptr(), I, rows, p.down_proj->value, precision);
}

template <typename T>
void mlp_backward(Tensor<T>& dx, MlpSaved<T>& s, const MlpParams<T>& p, const Tensor<T>& dy, GemmPrecision precision,
                  bool accumulate_dx) {
  const int64_t H = p.hidden(), I = p.inner(), rows = s.x.numel() / H;
  Tensor<T>& dh = s.dh;
  prepare(dh, {rows, I});
  linear_backward(dh.ptr(), I, T(0), p.down_proj->grad, dy.ptr(), H, s.h.ptr(), I, rows, p.down_proj->value,
                  precision);
  // gu <- d(gu) in place (swiglu_backward reads each element before writing it)
  cpu::swiglu_backward(s.gu.ptr(), s.gu.ptr() + I, dh.ptr(), s.gu.ptr(), s.gu.ptr() + I, rows, I, 2 * I);
  if (!accumulate_dx) prepare(dx, {rows, H});
  linear_backward(dx.ptr(), H, accumulate_dx ? T(1) : T(0), p.gate_proj->grad, s.gu.ptr(), 2 * I, s.x.ptr(), H, rows,
                  p.gate_proj->value, precision);
  linear_backward(dx.ptr(), H, T(1), p.up_proj->grad, s.gu.ptr() + I, 2 * I, s.x.ptr(), H, rows, p.up_proj->value,
                  precision);
}

template void mlp_forward<float>(Tensor<float>&, MlpSaved<float>&, const MlpParams<float>&, const Tensor<float>&,
                                 GemmPrecision);
template void mlp_forward<double>(Tensor<double>&, MlpSaved<double>&, const MlpParams<double>&, const Tensor<double>&,
                                  GemmPrecision);
template void mlp_backward<float>(Tensor<float>&, MlpSaved<float>&, const MlpParams<float>&, const Tensor<float>&,
                                  GemmPrecision, bool);
template void mlp_backward<double>(Tensor<double>&, MlpSaved<double>&, const MlpParams<double>&,
                                   const Tensor<double>&, GemmPrecision, bool);

}  // namespace moelab
