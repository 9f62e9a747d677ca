// gather_rows.cu — out[i, :] = in[rows[i], :] for fp32 rows: picks, from a step's residual stream, the last
// token of each sequence (the only rows whose logits are wanted) before the final norm and the lm_head.
//
// Legend: N = rows gathered, R = rows of the input, D = width.
//
// Launch contract (kernel gather_rows_f32):
//   grid  (ceil(D / 256), N, 1)   blockIdx.y = output row (N <= 65535)
//   block (256, 1, 1)
//   dynamic shared memory: 0
//
// Arguments:
//   out    float*          [N, D]
//   in     const float*    [R, D]
//   rows   const int*      [N]     input row of each output row; outside [0, R): the row is NaN
//   n, r, dim              ints (N, R, D)
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
gather_rows_f32(float *__restrict__ out, const float *__restrict__ in, const int *__restrict__ rows, int n, int r, int dim) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    const int i = blockIdx.y;
    if (c >= dim || i >= n) {
        return;
    }
    const int src = rows[i];
    out[(size_t) i * dim + c] = src >= 0 && src < r ? in[(size_t) src * dim + c] : __int_as_float(0x7fc00000);
}
