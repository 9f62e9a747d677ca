// mma.cuh — one tensor-core tile product, mma.sync.m16n8k16 with bf16 inputs and fp32 accumulators, for
// the tiled GEMM kernels (matmul.cu, moe_experts.cu's grouped path). Included, never compiled alone.
//
// Fragments (PTX ISA, mma.m16n8k16 .bf16; g = lane / 4, q = lane % 4; a register holds 2 bf16, the
// lower column in the low half):
//   A (16×16): a0 = A[g][2q..2q+1]   a1 = A[g+8][2q..]   a2 = A[g][2q+8..]   a3 = A[g+8][2q+8..]
//   B (16×8, k × n): b0 = B[2q..2q+1][g]   b1 = B[2q+8..2q+9][g]       (= W[n0+g][k0+2q..] pairs)
//   C (16×8 fp32): c0, c1 = C[g][2q], C[g][2q+1]   c2, c3 = C[g+8][2q], C[g+8][2q+1]
// Under RS_CPU_EMULATION the same product is computed from that layout with warp shuffles, so the
// CPU emulator checks the callers' tiling and fragment indexing.
#pragma once

#include "vec.cuh"

namespace rs {

/** d += a · b for one m16n8k16 tile (fragments as in the header). */
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#ifdef RS_CPU_EMULATION
    const int lane = threadIdx.x % WARP;
    const int g = lane / 4;
    const int q = lane % 4;
    for (int kk = 0; kk < 16; kk++) {
        const int src = (kk % 8) / 2;    // q of the lane holding column kk
        const bool high = (kk & 1) != 0; // which half of that lane's register
        const int reg = kk < 8 ? 0 : 1;  // A: regs 0/1 (rows g/g+8) for kk < 8, 2/3 above; B: reg 0/1
        const unsigned a_top = __shfl_sync(FULL_MASK, a[2 * reg], g * 4 + src);
        const unsigned a_bot = __shfl_sync(FULL_MASK, a[2 * reg + 1], g * 4 + src);
        const unsigned b_c0 = __shfl_sync(FULL_MASK, b[reg], (2 * q) * 4 + src);
        const unsigned b_c1 = __shfl_sync(FULL_MASK, b[reg], (2 * q + 1) * 4 + src);
        const float at = high ? bf16_hi(a_top) : bf16_lo(a_top);
        const float ab = high ? bf16_hi(a_bot) : bf16_lo(a_bot);
        const float b0 = high ? bf16_hi(b_c0) : bf16_lo(b_c0);
        const float b1 = high ? bf16_hi(b_c1) : bf16_lo(b_c1);
        d[0] += at * b0;
        d[1] += at * b1;
        d[2] += ab * b0;
        d[3] += ab * b1;
    }
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/** Two adjacent bf16 of a shared-memory tile as one fragment register (4-byte aligned). */
__device__ __forceinline__ unsigned smem_pair(const bf16_t *p) {
    return *reinterpret_cast<const unsigned *>(p);
}

/**
 * One warp's 32 × 32 sub-tile of C += A · Bᵀ over the k16 slice [ks, ks + 16) of two shared-memory
 * tiles, A rows [wm, wm + 32) of `as` and B rows (= output columns) [wn, wn + 32) of `bs`, both
 * K-contiguous with row stride LDS bf16: 2 (m16) × 4 (n8) mma tiles. acc[i][j] is the C fragment of
 * rows wm + 16i.., columns wn + 8j...
 */
template <int LDS>
__device__ __forceinline__ void warp_tile_32x32(float (&acc)[2][4][4], const bf16_t (*as)[LDS], const bf16_t (*bs)[LDS], int wm, int wn,
                                                int ks) {
    const int lane = threadIdx.x % WARP;
    const int g = lane / 4;
    const int q = lane % 4;
    unsigned a[2][4];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int r = wm + i * 16 + g;
        a[i][0] = smem_pair(&as[r][ks + 2 * q]);
        a[i][1] = smem_pair(&as[r + 8][ks + 2 * q]);
        a[i][2] = smem_pair(&as[r][ks + 2 * q + 8]);
        a[i][3] = smem_pair(&as[r + 8][ks + 2 * q + 8]);
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int c = wn + j * 8 + g;
        const unsigned b[2] = {smem_pair(&bs[c][ks + 2 * q]), smem_pair(&bs[c][ks + 2 * q + 8])};
#pragma unroll
        for (int i = 0; i < 2; i++) {
            mma_bf16_16816(acc[i][j], a[i], b);
        }
    }
}

/** The warp's 32 × 32 sub-tile over one staged K step of BK columns (BK a multiple of 16). */
template <int LDS, int BK>
__device__ __forceinline__ void warp_tile_step(float (&acc)[2][4][4], const bf16_t (*as)[LDS], const bf16_t (*bs)[LDS], int wm, int wn) {
#pragma unroll
    for (int ks = 0; ks < BK; ks += 16) {
        warp_tile_32x32<LDS>(acc, as, bs, wm, wn, ks);
    }
}

__device__ __forceinline__ void zero_tile(float (&acc)[2][4][4]) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                acc[i][j][e] = 0.f;
            }
        }
    }
}

/**
 * Hands every element of the warp's sub-tile to f(row, col, value), row and col within the block tile
 * (the C fragment layout above: this lane holds rows wm + 16i + g (+8), columns wn + 8j + 2q (+1)).
 */
template <typename F>
__device__ __forceinline__ void for_each_fragment(const float (&acc)[2][4][4], int wm, int wn, F f) {
    const int lane = threadIdx.x % WARP;
    const int g = lane / 4;
    const int q = lane % 4;
#pragma unroll
    for (int i = 0; i < 2; i++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                f(wm + i * 16 + g + (e >= 2 ? 8 : 0), wn + j * 8 + 2 * q + (e & 1), acc[i][j][e]);
            }
        }
    }
}

} // namespace rs
