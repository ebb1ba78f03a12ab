// Which backend runs the ops: the CPU reference or the CUDA kernels.
// Subcommands that can run on a GPU take --device cpu|cuda; asking for cuda
// where moelab was built without CUDA or no GPU is present is bad input
// (one line, exit 2), never a silent fallback to the CPU.
#pragma once

#include <string>

namespace moelab {

enum class Device { cpu, cuda };

// "cpu" | "cuda"; anything else throws moelab::Error.
Device parse_device(const std::string& name);
// Throws when device is cuda and none can be used, saying why.
void require_device(Device device);
// "cpu", or the GPU's name and architecture.
std::string device_name(Device device);

}  // namespace moelab
