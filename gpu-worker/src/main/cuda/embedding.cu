// embedding.cu — the first step of the forward pass: x[t] = word_embeddings[ids[t]], widened to fp32.
// Mirrors ReferenceForward.embedding() (Matrix.row of the bf16 table), exactly: bf16 -> fp32 is exact.
//
// Legend: T = tokens, V = vocab, D = hidden.
//
// The residual stream is fp32 on the GPU, as on the CPU: every residual add (attention's dense, the
// MLP/MoE output) accumulates into fp32, and each RMSNorm rounds its output to bf16 for the next
// GEMV. HF keeps the residual in bf16 (MODEL.md §3.3); fp32 is closer to the float64 reference that
// judges us (§11) and costs 4 bytes per value of a tensor of T·D, nothing next to the weights.
//
// Launch contract (kernel embedding):
//   grid  (T, 1, 1)     one block per token
//   block (256, 1, 1)   threads stride over the row: 8 bf16 per 16-byte load when D % 8 == 0 and
//                       both pointers are 16-byte aligned, else one element at a time
//   dynamic shared memory: 0
//
// Arguments:
//   out     float*         [T, D]  the residual stream x
//   table   const bf16*    [V, D]  model.word_embeddings.weight
//   ids     const int*     [T]     token ids; an id outside [0, V) writes a row of NaN so the mistake
//                                  shows (the host validates ids before they reach the GPU)
//   tokens, dim, vocab     ints as named
#include "vec.cuh"

extern "C" __global__ void __launch_bounds__(256)
embedding(float *__restrict__ out, const rs::bf16_t *__restrict__ table, const int *__restrict__ ids, int tokens, int dim,
          int vocab) {
    const int t = blockIdx.x;
    if (t >= tokens) {
        return;
    }
    const int id = ids[t];
    float *row_out = out + (size_t) t * dim; // (D)
    if (id < 0 || id >= vocab) {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) {
            row_out[i] = __uint_as_float(0x7fc00000u); // NaN
        }
        return;
    }
    const rs::bf16_t *row = table + (size_t) id * dim; // (D)
    if ((dim & 7) == 0 && rs::aligned16(row) && rs::aligned16(row_out)) {
        // 8 elements per thread per step: one 16-byte load, two 16-byte stores
        for (int v = threadIdx.x; v < dim / 8; v += blockDim.x) {
            float f[8];
            rs::unpack8(rs::load16(row + 8 * v), f);
            rs::vec16 lo, hi;
            lo.x = __float_as_uint(f[0]);
            lo.y = __float_as_uint(f[1]);
            lo.z = __float_as_uint(f[2]);
            lo.w = __float_as_uint(f[3]);
            hi.x = __float_as_uint(f[4]);
            hi.y = __float_as_uint(f[5]);
            hi.z = __float_as_uint(f[6]);
            hi.w = __float_as_uint(f[7]);
            rs::store16(row_out + 8 * v, lo);
            rs::store16(row_out + 8 * v + 4, hi);
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) {
            row_out[i] = rs::bf16_to_f32(row[i]);
        }
    }
}
