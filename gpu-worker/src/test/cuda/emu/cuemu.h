// cuemu.h — a tiny CPU emulator for the CUDA kernels in gpu-worker/src/main/cuda, so their logic can be
// checked on a machine without a GPU (the build machines have nvcc but no device).
//
// Every CUDA thread of a block is a std::thread; blocks run one after another, so __shared__ can be a
// function-local `static`. __syncthreads is a std::barrier over the block, warp shuffles/ballots a
// barrier over the 32 lanes of a warp (kernels must call them with full warps, as ours do). Atomics go
// through std::atomic_ref. Compile the harness with g++ -std=c++20 -fsanitize=address,undefined so
// out-of-bounds global or shared accesses are caught. Numerics: expf/logf are the host libm's, so
// results match a GPU only to a few ulp; the harness checks against plain reference loops with
// tolerances, like the GPU tests do.
//
// With RS_EMU_FIBERS defined (the libraries build-emulator.sh makes for the JVM tests) a block's threads are instead
// fibers on the launching thread, switched round-robin at every barrier: the same semantics without an OS
// thread per CUDA thread, and many times faster on a machine with few cores. Sanitizers need the thread form.
//
// This is a test tool, not a performance model: it says nothing about speed, coalescing or races that
// only a real warp schedule would expose (each barrier here is a full fence).
#pragma once

#define RS_CPU_EMULATION 1

#include <atomic>
#include <barrier>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>
#ifdef RS_EMU_FIBERS
#include <functional>
#if !defined(__x86_64__)
#error "RS_EMU_FIBERS switches stacks with x86-64 code"
#endif
#endif

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct emu_uint3 {
    unsigned x, y, z;
};

namespace emu {
#ifdef RS_EMU_FIBERS
// one OS thread runs every fiber of a block: the "current thread" is a plain global the scheduler sets
inline emu_uint3 thread_idx{0, 0, 0};
inline emu_uint3 block_idx{0, 0, 0};
inline int linear_tid = 0;

// rs_emu_switch(&from_sp, to_sp): saves the callee-saved registers, MXCSR and the x87 control word on this stack,
// stores the stack pointer in *from_sp and resumes the fiber whose stack pointer is to_sp (System V x86-64). A plain
// function switch: no signal mask is saved (ucontext's swapcontext makes a system call each time).
extern "C" void rs_emu_switch(void **from_sp, void *to_sp);
asm(R"(
    .text
    .p2align 4
    .hidden rs_emu_switch
    .type rs_emu_switch, @function
rs_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size rs_emu_switch, .-rs_emu_switch
)");

struct Fiber {
    void *sp;
    bool done;
};
inline void *scheduler_sp;
inline std::vector<Fiber> fibers;
inline std::vector<std::unique_ptr<char[]>> stacks;
constexpr size_t FIBER_STACK = 256 * 1024;
inline std::function<void()> fiber_body;

inline void yield() { rs_emu_switch(&fibers[linear_tid].sp, scheduler_sp); }

/** A barrier of fibers: the last to arrive goes on; the others yield until the generation moves. */
class Barrier {
  public:
    explicit Barrier(int expected) : expected_(expected) {}
    void arrive_and_wait() {
        unsigned long g = generation_;
        if (++arrived_ == expected_) {
            arrived_ = 0;
            generation_++;
            return;
        }
        while (generation_ == g) {
            yield();
        }
    }

  private:
    int expected_;
    int arrived_ = 0;
    unsigned long generation_ = 0;
};
using barrier_t = Barrier;

[[noreturn]] inline void fiber_main() {
    fiber_body();
    fibers[linear_tid].done = true;
    void *unused;
    rs_emu_switch(&unused, scheduler_sp); // never resumed
    std::abort();
}

/** A fresh fiber's stack: the frame rs_emu_switch pops, "returning" into fiber_main with the stack a call would give it. */
inline void *fiber_start(char *stack, size_t size) {
    uintptr_t top = ((uintptr_t) (stack + size)) & ~(uintptr_t) 15;
    uint64_t *sp = (uint64_t *) top;
    *--sp = 0;                               // fiber_main's return address (it never returns); top - 8
    *--sp = (uint64_t) (uintptr_t) &fiber_main; // rs_emu_switch's ret goes here, leaving rsp = top - 8 as after a call
    for (int r = 0; r < 6; r++) {
        *--sp = 0;                           // rbp, rbx, r12-r15
    }
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    *--sp = (uint64_t) mxcsr | ((uint64_t) fpucw << 32);
    return sp;
}
#else
inline thread_local emu_uint3 thread_idx{0, 0, 0};
inline thread_local emu_uint3 block_idx{0, 0, 0};
inline thread_local int linear_tid = 0;
using barrier_t = std::barrier<>;
#endif
inline dim3 block_dim;
inline dim3 grid_dim;
inline barrier_t *block_barrier = nullptr;
struct Warp {
    std::unique_ptr<barrier_t> bar;
    uint64_t slots[32];
};
inline std::vector<Warp> *warps = nullptr;
inline std::vector<unsigned char> dyn_smem;

inline Warp &my_warp() { return (*warps)[linear_tid / 32]; }
inline int my_lane() { return linear_tid % 32; }

template <typename T> inline T exchange(T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    Warp &w = my_warp();
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w.slots[my_lane()] = bits;
    w.bar->arrive_and_wait();
    T r;
    uint64_t s = w.slots[src];
    std::memcpy(&r, &s, sizeof(T));
    w.bar->arrive_and_wait();
    return r;
}
} // namespace emu

inline unsigned char *rs_emu_dynamic_smem() { return emu::dyn_smem.data(); }

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) alignas(n)

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::my_warp().bar->arrive_and_wait(); }

template <typename T> inline T __shfl_xor_sync(unsigned, T v, int m, int = 32) {
    return emu::exchange(v, emu::my_lane() ^ m);
}
template <typename T> inline T __shfl_sync(unsigned, T v, int src, int = 32) {
    return emu::exchange(v, src & 31);
}
template <typename T> inline T __shfl_down_sync(unsigned, T v, unsigned d, int = 32) {
    int src = emu::my_lane() + (int) d;
    return emu::exchange(v, src < 32 ? src : emu::my_lane());
}
template <typename T> inline T __shfl_up_sync(unsigned, T v, unsigned d, int = 32) {
    int src = emu::my_lane() - (int) d;
    return emu::exchange(v, src >= 0 ? src : emu::my_lane());
}
inline unsigned __ballot_sync(unsigned, int pred) {
    emu::Warp &w = emu::my_warp();
    w.slots[emu::my_lane()] = pred ? 1 : 0;
    w.bar->arrive_and_wait();
    unsigned r = 0;
    for (int i = 0; i < 32; i++) {
        r |= (w.slots[i] ? 1u : 0u) << i;
    }
    w.bar->arrive_and_wait();
    return r;
}
inline int __any_sync(unsigned m, int pred) { return __ballot_sync(m, pred) != 0; }
inline int __all_sync(unsigned m, int pred) { return __ballot_sync(m, pred) == 0xffffffffu; }

template <typename T> inline T atomicAdd(T *p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
// a load through L2 (ld.global.cg): here simply a load of what another thread wrote
template <typename T> inline T __ldcg(const T *p) { return std::atomic_ref<T>(*const_cast<T *>(p)).load(); }
inline int atomicMax(int *p, int v) {
    std::atomic_ref<int> a(*p);
    int old = a.load();
    while (old < v && !a.compare_exchange_weak(old, v)) {
    }
    return old;
}
inline unsigned long long atomicMax(unsigned long long *p, unsigned long long v) {
    std::atomic_ref<unsigned long long> a(*p);
    unsigned long long old = a.load();
    while (old < v && !a.compare_exchange_weak(old, v)) {
    }
    return old;
}
inline int atomicCAS(int *p, int cmp, int v) {
    std::atomic_ref<int>(*p).compare_exchange_strong(cmp, v);
    return cmp;
}

inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline long long __double_as_longlong(double d) { long long u; std::memcpy(&u, &d, 8); return u; }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline double __drcp_rn(double x) { return 1.0 / x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(unsigned x) { return x == 0 ? 32 : __builtin_clz(x); }
inline int __ffs(unsigned x) { return __builtin_ffs((int) x); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned) (((unsigned long long) a * b) >> 32); }
template <typename T> inline T __ldg(const T *p) { return *p; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }

namespace emu {
/** Runs kernel k over the grid, block after block, each block's threads concurrently. */
template <typename F, typename... Args>
void launch(F k, dim3 grid, dim3 block, size_t shared_bytes, Args... args) {
    const int n = (int) (block.x * block.y * block.z);
    if (n < 1 || n > 1024) {
        std::fprintf(stderr, "emu: block of %d threads\n", n);
        std::abort();
    }
    grid_dim = grid;
    block_dim = block;
    for (unsigned bz = 0; bz < grid.z; bz++) {
        for (unsigned by = 0; by < grid.y; by++) {
            for (unsigned bx = 0; bx < grid.x; bx++) {
                dyn_smem.assign(shared_bytes + 16, 0xCD); // garbage, as on a GPU
                dyn_smem.resize(shared_bytes);
                dyn_smem.shrink_to_fit();
                barrier_t bar(n);
                block_barrier = &bar;
                std::vector<Warp> ws((n + 31) / 32);
                for (int w = 0; w < (int) ws.size(); w++) {
                    ws[w].bar = std::make_unique<barrier_t>(std::min(32, n - 32 * w));
                }
                warps = &ws;
#ifdef RS_EMU_FIBERS
                block_idx = {bx, by, bz};
                fiber_body = [&]() { k(args...); };
                fibers.resize(n);
                while ((int) stacks.size() < n) {
                    stacks.emplace_back(new char[FIBER_STACK]);
                }
                for (int t = 0; t < n; t++) {
                    fibers[t].done = false;
                    fibers[t].sp = fiber_start(stacks[t].get(), FIBER_STACK);
                }
                for (int left = n; left > 0;) {
                    left = 0;
                    for (int t = 0; t < n; t++) {
                        if (fibers[t].done) {
                            continue;
                        }
                        thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        linear_tid = t;
                        rs_emu_switch(&scheduler_sp, fibers[t].sp);
                        left += fibers[t].done ? 0 : 1;
                    }
                }
#else
                std::vector<std::thread> threads;
                threads.reserve(n);
                for (int t = 0; t < n; t++) {
                    threads.emplace_back([=]() {
                        thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        block_idx = {bx, by, bz};
                        linear_tid = t;
                        k(args...);
                    });
                }
                for (auto &th : threads) {
                    th.join();
                }
#endif
                warps = nullptr;
                block_barrier = nullptr;
            }
        }
    }
}
} // namespace emu
