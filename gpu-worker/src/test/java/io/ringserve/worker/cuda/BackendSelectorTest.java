package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.worker.cuda.BackendSelector.Backend;
import io.ringserve.worker.cuda.BackendSelector.Choice;
import io.ringserve.worker.cuda.BackendSelector.Requested;
import org.junit.jupiter.api.Test;

/** Every combination of request, GPU and kernels. */
class BackendSelectorTest {
    private static final CudaProbe.Probe NO_DRIVER = new CudaProbe.Probe(false, "no CUDA driver: libcuda.so.1 cannot be loaded", "", 0, 0, 0, true);
    private static final CudaProbe.Probe H100 = new CudaProbe.Probe(true, "", "NVIDIA H100 80GB HBM3", 85L << 30, 9, 0, true);
    private static final CudaProbe.Probe H100_NO_KERNELS = new CudaProbe.Probe(true, "", "NVIDIA H100 80GB HBM3", 85L << 30, 9, 0, false);

    @Test
    void cpuNeverLooksAtTheGpu() {
        Choice c = BackendSelector.select(Requested.CPU, null);
        assertEquals(Backend.CPU, c.backend());
        assertFalse(c.gpuUnused());
    }

    @Test
    void autoFallsBackToTheCpuSayingWhy() {
        Choice none = BackendSelector.select(Requested.AUTO, NO_DRIVER);
        assertEquals(Backend.CPU, none.backend());
        assertTrue(none.reason().contains("libcuda.so.1"), none.reason());
        assertFalse(none.gpuUnused(), "no GPU is not news");

        Choice noKernels = BackendSelector.select(Requested.AUTO, H100_NO_KERNELS);
        assertEquals(Backend.CPU, noKernels.backend());
        assertTrue(noKernels.reason().contains("no CUDA kernels"), noKernels.reason());
        assertTrue(noKernels.gpuUnused());

        assertEquals(Backend.CUDA, BackendSelector.select(Requested.AUTO, H100).backend());
    }

    @Test
    void cudaFailsInOneLineWithTheReason() {
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> BackendSelector.select(Requested.CUDA, NO_DRIVER));
        assertEquals("cuda was requested, but no CUDA driver: libcuda.so.1 cannot be loaded", none.getMessage());

        IllegalArgumentException noKernels = assertThrows(IllegalArgumentException.class,
                () -> BackendSelector.select(Requested.CUDA, H100_NO_KERNELS));
        assertTrue(noKernels.getMessage().contains("this build has no CUDA kernels"), noKernels.getMessage());
        assertFalse(noKernels.getMessage().contains("\n"));

        assertEquals(Backend.CUDA, BackendSelector.select(Requested.CUDA, H100).backend());
    }

    @Test
    void thisMachineGetsWhatItsProbeAllows() {
        CudaProbe.Probe probe = CudaProbe.probe();
        assertEquals(probe.ready() ? Backend.CUDA : Backend.CPU, BackendSelector.select(Requested.AUTO).backend());
        if (!probe.ready()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BackendSelector.select(Requested.CUDA));
            assertTrue(e.getMessage().contains(probe.whyNotReady()), e.getMessage());
        }
    }

    @Test
    void requestsParse() {
        assertEquals(Requested.CUDA, Requested.parse(" Cuda "));
        assertThrows(IllegalArgumentException.class, () -> Requested.parse("tpu"));
    }
}
