// matmul.cu — y = x · Wᵀ for many tokens (prefill, batches above gemv's 8): tensor cores through
// mma.sync.m16n8k16 (bf16 inputs, fp32 accumulators), W bf16 row-major [N, K] as the checkpoint
// stores it, x bf16, y fp32. Mirrors ReferenceOps.matmul; gemv.cu is the T <= 8 path.
//
// Legend: T = tokens, N = output features (rows of W), K = input features.
//
// Tiling: a block computes a 64 (tokens) × 64 (outputs) tile of y, marching over K in steps of 32.
// Both operands are K-contiguous in memory (x rows, W rows), which is exactly the "row.col" layout
// mma wants: A = x tile (row-major), B = Wᵀ tile (column-major = W rows). Each step the block stages
// Xs[64][32] and Ws[64][32] in shared memory (rows padded to 40 bf16 so the fragment reads below
// hit 32 distinct banks), then each of the 4 warps (2 × 2) computes a 32 × 32 sub-tile as
// 2 (m16) × 4 (n8) mma tiles over two k16 slices.
//
// Fragments (PTX ISA, mma.m16n8k16 .bf16; g = lane / 4, q = lane % 4; a register holds 2 bf16, the
// lower column in the low half):
//   A (16×16): a0 = A[g][2q..2q+1]   a1 = A[g+8][2q..]   a2 = A[g][2q+8..]   a3 = A[g+8][2q+8..]
//   B (16×8, k × n): b0 = B[2q..2q+1][g]   b1 = B[2q+8..2q+9][g]       (= W[n0+g][k0+2q..] pairs)
//   C (16×8 fp32): c0, c1 = C[g][2q], C[g][2q+1]   c2, c3 = C[g+8][2q], C[g+8][2q+1]
// Every fragment register is one aligned 32-bit shared-memory read.
//
// This is the plain version: tiles are loaded through registers with a barrier per K step, no
// cp.async pipeline, no ldmatrix, no wgmma. It is correct for any shape (tiles at the edges are
// zero-filled) and uses the tensor cores, but leaves speed on the table for long prefills.
//
// Launch contract (kernel matmul_bf16):
//   grid  (ceil(N / 64), ceil(T / 64), 1)
//   block (128, 1, 1)     4 warps
//   dynamic shared memory: 0 (static 2 · 64 · 40 · 2 B = 10 KiB)
//   16-byte tile loads when K % 8 == 0 and x, W are 16-byte aligned; else element loads (any K)
//
// Arguments:
//   y        float*        [T, N]  output (or accumulated into when accumulate != 0)
//   x        const bf16*   [T, K]
//   w        const bf16*   [N, K]
//   tokens, n, k   ints as named
//   accumulate int         0: y = x·Wᵀ; 1: y += x·Wᵀ
#include "vec.cuh"

namespace {

constexpr int BM = 64;        // tokens per block tile
constexpr int BN = 64;        // outputs per block tile
constexpr int BK = 32;        // K per step
constexpr int LDS = BK + 8;   // shared row stride in bf16: 80 bytes, 16-byte aligned, conflict-free fragments
constexpr int THREADS = 128;  // 4 warps as 2 (tokens) × 2 (outputs), 32 × 32 each

/** d += a · b for one m16n8k16 tile (fragments as in the header). */
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#ifdef RS_CPU_EMULATION
    // The same product computed from the fragment layout above with warp shuffles, so the CPU
    // emulator checks the tiling and the fragment indexing of this kernel.
    const int lane = threadIdx.x % rs::WARP;
    const int g = lane / 4;
    const int q = lane % 4;
    for (int kk = 0; kk < 16; kk++) {
        const int src = (kk % 8) / 2;    // q of the lane holding column kk
        const bool high = (kk & 1) != 0; // which half of that lane's register
        const int reg = kk < 8 ? 0 : 1;  // A: regs 0/1 (rows g/g+8) for kk < 8, 2/3 above; B: reg 0/1
        const unsigned a_top = __shfl_sync(rs::FULL_MASK, a[2 * reg], g * 4 + src);
        const unsigned a_bot = __shfl_sync(rs::FULL_MASK, a[2 * reg + 1], g * 4 + src);
        const unsigned b_c0 = __shfl_sync(rs::FULL_MASK, b[reg], (2 * q) * 4 + src);
        const unsigned b_c1 = __shfl_sync(rs::FULL_MASK, b[reg], (2 * q + 1) * 4 + src);
        const float at = high ? rs::bf16_hi(a_top) : rs::bf16_lo(a_top);
        const float ab = high ? rs::bf16_hi(a_bot) : rs::bf16_lo(a_bot);
        const float b0 = high ? rs::bf16_hi(b_c0) : rs::bf16_lo(b_c0);
        const float b1 = high ? rs::bf16_hi(b_c1) : rs::bf16_lo(b_c1);
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

__device__ __forceinline__ unsigned smem_pair(const rs::bf16_t *p) {
    return *reinterpret_cast<const unsigned *>(p);
}

/**
 * Stages rows [row0, row0 + 64) × columns [k0, k0 + 32) of a row-major bf16 [rows, k] matrix into
 * tile[64][LDS], zero outside the matrix.
 */
__device__ __forceinline__ void load_tile(rs::bf16_t (*tile)[LDS], const rs::bf16_t *__restrict__ m, int rows, int k, int row0,
                                          int k0, bool vec) {
    if (vec) {
        // 64 rows × 4 vectors of 8: two 16-byte loads per thread
#pragma unroll
        for (int i = 0; i < (BM * BK / 8) / THREADS; i++) {
            const int c = threadIdx.x + i * THREADS;
            const int r = c / (BK / 8);
            const int col = (c % (BK / 8)) * 8;
            rs::vec16 v = {0u, 0u, 0u, 0u};
            if (row0 + r < rows && k0 + col < k) { // K % 8 == 0: a vector is wholly inside or outside
                v = rs::load16(m + (size_t) (row0 + r) * k + k0 + col);
            }
            rs::store16(&tile[r][col], v);
        }
    } else {
        for (int c = threadIdx.x; c < BM * BK; c += THREADS) {
            const int r = c / BK;
            const int col = c % BK;
            tile[r][col] = (row0 + r < rows && k0 + col < k) ? m[(size_t) (row0 + r) * k + k0 + col] : (rs::bf16_t) 0;
        }
    }
}

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS)
matmul_bf16(float *__restrict__ y, const rs::bf16_t *__restrict__ x, const rs::bf16_t *__restrict__ w, int tokens, int n, int k,
            int accumulate) {
    __align__(16) __shared__ rs::bf16_t xs[BM][LDS]; // (64 tokens, 32 k) + padding
    __align__(16) __shared__ rs::bf16_t ws[BN][LDS]; // (64 outputs, 32 k) + padding

    const int warp = threadIdx.x / rs::WARP;
    const int lane = threadIdx.x % rs::WARP;
    const int g = lane / 4;
    const int q = lane % 4;
    const int wm = (warp / 2) * 32; // warp's first token row within the tile
    const int wn = (warp % 2) * 32; // warp's first output column within the tile
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;
    const bool vec = (k & 7) == 0 && rs::aligned16(x) && rs::aligned16(w);

    float acc[2][4][4]; // (m16 tile, n8 tile, fragment)
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

    for (int k0 = 0; k0 < k; k0 += BK) {
        load_tile(xs, x, tokens, k, m0, k0, vec);
        load_tile(ws, w, n, k, n0, k0, vec);
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < BK; ks += 16) {
            unsigned a[2][4];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int r = wm + i * 16 + g;
                a[i][0] = smem_pair(&xs[r][ks + 2 * q]);
                a[i][1] = smem_pair(&xs[r + 8][ks + 2 * q]);
                a[i][2] = smem_pair(&xs[r][ks + 2 * q + 8]);
                a[i][3] = smem_pair(&xs[r + 8][ks + 2 * q + 8]);
            }
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int c = wn + j * 8 + g;
                const unsigned b[2] = {smem_pair(&ws[c][ks + 2 * q]), smem_pair(&ws[c][ks + 2 * q + 8])};
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    mma_bf16_16816(acc[i][j], a[i], b);
                }
            }
        }
        __syncthreads(); // before the next step overwrites the tiles
    }

    // epilogue: each lane owns (row, col) pairs of its fragments
#pragma unroll
    for (int i = 0; i < 2; i++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int row = m0 + wm + i * 16 + g + (e >= 2 ? 8 : 0);
                const int col = n0 + wn + j * 8 + 2 * q + (e & 1);
                if (row < tokens && col < n) {
                    float *dst = y + (size_t) row * n + col;
                    *dst = accumulate ? *dst + acc[i][j][e] : acc[i][j][e];
                }
            }
        }
    }
}
