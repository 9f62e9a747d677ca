// fill_random.cu — seeded pseudo-random weights on the GPU for --dummy-weights (vLLM's --load-format
// dummy): a benchmark needs the model's shapes and bytes, not its values, and filling 30 GB on the
// device beats reading it from disk.
//
// Element i of a buffer filled with seed s is a pure function of (s, i), so the result does not depend
// on the grid, the block size or how a tensor is split into launches:
//     bits(s, i) = mix64(s + (i + 1) · 0x9E3779B97F4A7C15)            (SplitMix64, Stafford variant 13)
//     v        = ((int) (bits >> 40) − 2^23) · 2^-23                   exact, uniform in [-1, 1) on a 2^-23 grid
//     f32:  out[i] = v · scale          bf16: out[i] = bf16_rne(v · scale)
// so the values lie in [-scale, scale] (bf16 rounding may reach ±scale). bits(s, i) is the (i+1)-th
// nextLong() of java.util.SplittableRandom(s), and io.ringserve.worker.cuda.ops.FillRandom mirrors the
// formula on the host, bit for bit, for tests and for a CPU run of the same dummy model.
//
// Launch contract (kernels fill_random_bf16, fill_random_f32):
//   grid  (any, 1, 1)    grid-stride loop over n; the wrapper uses min(ceil(n / 256), 65535) blocks
//   block (256, 1, 1)
//   dynamic shared memory: 0
//
// Arguments:
//   out    bf16* | float*   [n]   filled
//   n      long long              elements
//   seed   unsigned long long
//   scale  float                  half-width of the range
#include "common.cuh"

namespace {

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/** Uniform in [-1, 1): the top 24 bits of the hash, centred, times 2^-23 (all steps exact). */
__device__ __forceinline__ float unit(unsigned long long seed, long long i) {
    const unsigned long long bits = mix64(seed + (unsigned long long) (i + 1) * 0x9E3779B97F4A7C15ull);
    return (float) ((int) (bits >> 40) - (1 << 23)) * 1.1920928955078125e-7f; // 2^-23
}

} // namespace

extern "C" __global__ void __launch_bounds__(256)
fill_random_bf16(rs::bf16_t *__restrict__ out, long long n, unsigned long long seed, float scale) {
    const long long stride = (long long) gridDim.x * blockDim.x;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        out[i] = rs::f32_to_bf16(unit(seed, i) * scale);
    }
}

extern "C" __global__ void __launch_bounds__(256)
fill_random_f32(float *__restrict__ out, long long n, unsigned long long seed, float scale) {
    const long long stride = (long long) gridDim.x * blockDim.x;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        out[i] = unit(seed, i) * scale;
    }
}
