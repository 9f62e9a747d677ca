// emu_export.h — C entry points for the kernels of one .cu file compiled with cuemu.h, so that a test JVM can run
// them on the CPU (build-emulator.sh writes one RS_EMU_EXPORT per kernel; CpuKernels.java calls them).
//
// rs_emu_<kernel>(gx, gy, gz, bx, by, bz, shared_bytes, args) launches <kernel> over the grid like cuLaunchKernel:
// args[i] points at the i-th argument's value, whose type is the kernel's own i-th parameter type.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

namespace emu {
template <typename... A, std::size_t... I>
void launch_packed(void (*k)(A...), dim3 grid, dim3 block, unsigned shared, void **args, std::index_sequence<I...>) {
    launch(k, grid, block, shared, *static_cast<std::remove_cv_t<A> *>(args[I])...);
}

template <typename... A> void launch_packed(void (*k)(A...), dim3 grid, dim3 block, unsigned shared, void **args) {
    launch_packed(k, grid, block, shared, args, std::index_sequence_for<A...>{});
}
} // namespace emu

#define RS_EMU_EXPORT(k)                                                                                               \
    extern "C" __attribute__((visibility("default"))) void rs_emu_##k(unsigned gx, unsigned gy, unsigned gz,            \
                                                                      unsigned bx, unsigned by, unsigned bz,            \
                                                                      unsigned shared, void **args) {                   \
        emu::launch_packed(&k, dim3(gx, gy, gz), dim3(bx, by, bz), shared, args);                                      \
    }
