package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code gather_rows.cu}: {@code out[i] = in[rows[i]]} for fp32 rows — each sequence's last token before the final
 * norm and the lm_head (ReferenceForward computes logits only for those rows). Legend: N = rows out, R = rows in,
 * D = width.
 */
public final class GatherRows {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public GatherRows(CudaDevice device) {
        this.kernel = device.module("gather_rows").kernel("gather_rows_f32");
    }

    /**
     * @param out  (N, D) fp32
     * @param in   (R, D) fp32
     * @param rows (N) int row indices into {@code in} (outside [0, R): a NaN row)
     */
    public void launch(CUstream s, DeviceBuffer out, DeviceBuffer in, DeviceBuffer rows, int n, int r, int dim) {
        Shapes.gridYZ("gather_rows", "n", n);
        Shapes.positive("gather_rows", "r", r);
        Shapes.positive("gather_rows", "dim", dim);
        Shapes.require("gather_rows", "out", out, 4L * n * dim);
        Shapes.require("gather_rows", "in", in, 4L * r * dim);
        Shapes.require("gather_rows", "rows", rows, 4L * n);
        kernel.launch(s, Shapes.ceilDiv(dim, THREADS), n, 1, THREADS, 1, 1, 0, Kernel.args(out, in, rows, n, r, dim));
    }
}
