// convert.cu — dtype changes between kernels whose contracts differ: fp32 -> bf16 (round to nearest even,
// e.g. the fp32 attention output into the bf16 input of the o_proj GEMV, as the bf16 reference rounds it)
// and bf16 -> fp32 (exact, e.g. the bf16 normed hidden state into the fp32 input of the router and the
// experts).
//
// Legend: N = elements.
//
// Launch contract (kernels f32_to_bf16, bf16_to_f32):
//   grid  (min(ceil(N / 256), 65535), 1, 1)   grid-stride loop over the elements
//   block (256, 1, 1)
//   dynamic shared memory: 0
//
// Arguments:
//   out    bf16* / float*          [N]
//   in     const float* / bf16*    [N]
//   n      long long               element count
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
f32_to_bf16(rs::bf16_t *__restrict__ out, const float *__restrict__ in, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = rs::f32_to_bf16(in[i]);
    }
}

extern "C" __global__ void __launch_bounds__(256)
bf16_to_f32(float *__restrict__ out, const rs::bf16_t *__restrict__ in, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = rs::bf16_to_f32(in[i]);
    }
}
