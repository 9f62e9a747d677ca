package io.ringserve.worker.cuda;

import java.util.List;
import jcuda.driver.CUgraphExec;

/** A captured sequence of kernel launches, replayed as one ({@link CudaDevice#capture}, {@link CudaDevice#launch(CudaGraph, jcuda.driver.CUstream)}). */
public sealed interface CudaGraph {
    /** A graph the driver instantiated. */
    record Instantiated(CUgraphExec exec) implements CudaGraph {
    }

    /** A device without a driver: the launches the capture recorded, handed to its launcher again on each replay. */
    record Recorded(List<Runnable> launches) implements CudaGraph {
    }
}
