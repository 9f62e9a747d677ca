// silu_mul.cu — SwiGLU's activation between the gate/up and the down projection:
//     h[t, i] = bf16( silu(gate[t, i]) · up[t, i] ),  silu(g) = g · σ(g) = g / (1 + e^-g)
// Mirrors ReferenceOps.siluMul, in fp32 on the fp32 GEMV outputs; the result is bf16, the input of the
// down GEMV.
//
// Legend: T = tokens, I = intermediate size (dense MLP, one expert, or the shared expert).
//
// Layout: the dense MLP and every expert run gate_proj and up_proj as ONE GEMV over the stacked
// weight [2I, D] (gate rows first, then up rows: vLLM's gate_up_proj), so the GEMV output row is
// [gate (I) | up (I)] and the kernel reads gate = gate_up, up = gate_up + I, row stride 2I. Separate
// gate and up tensors work as well: pass their pointers and row stride I.
//
// Launch contract (kernel silu_mul):
//   grid  (ceil(I / 256), min(T, 65535), 1)   blockIdx.y strides over tokens
//   block (256, 1, 1)                          one element per thread
//   dynamic shared memory: 0
//
// Arguments:
//   h        bf16*         [T, I]          output
//   gate     const float*  [T, stride]     gate_proj output, first I columns of each row used
//   up       const float*  [T, stride]     up_proj output, first I columns of each row used
//   tokens, inter          ints as named (T, I)
//   stride   int           row stride of gate and up in elements (2I for a fused gate_up row, I for separate)
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
silu_mul(rs::bf16_t *__restrict__ h, const float *__restrict__ gate, const float *__restrict__ up, int tokens, int inter, int stride) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= inter) {
        return;
    }
    for (int t = blockIdx.y; t < tokens; t += gridDim.y) {
        const float g = gate[(size_t) t * stride + i];
        const float u = up[(size_t) t * stride + i];
        // expf, not __expf: full fp32 accuracy; for g -> -inf, e^-g = inf and g / inf = -0
        const float s = g / (1.0f + expf(-g));
        h[(size_t) t * inter + i] = rs::f32_to_bf16(s * u);
    }
}
