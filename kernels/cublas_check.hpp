// The cuBLAS / cuBLASLt error check (both return cublasStatus_t): a failing
// call throws moelab::Error naming the call and cuBLAS's reason. Host code.
#pragma once

#include <cublas_api.h>

#include "core/error.hpp"

#define MOE_CUBLAS_CHECK(call)                                                              \
  do {                                                                                      \
    cublasStatus_t moe_cublas_rc_ = (call);                                                 \
    MOE_CHECK(moe_cublas_rc_ == CUBLAS_STATUS_SUCCESS) << "cuBLAS call " #call " failed: " \
                                                       << cublasGetStatusString(moe_cublas_rc_); \
  } while (0)
