package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The probe and the kernel lookup, on any machine: what they say must match what is there. */
class CudaProbeTest {

    @Test
    void probeIsCachedAndExplainsItself() {
        CudaProbe.Probe p = CudaProbe.probe();
        assertSame(p, CudaProbe.probe());
        if (p.usable()) {
            assertEquals("", p.reason());
            assertFalse(p.deviceName().isBlank());
            assertTrue(p.totalMemory() > 0);
            assertTrue(p.computeCapabilityMajor() >= CudaProbe.MIN_MAJOR, p.describe());
        } else {
            assertFalse(p.reason().isBlank(), "an unusable GPU needs a reason");
            assertFalse(p.ready());
            assertEquals(p.reason(), p.whyNotReady());
            assertTrue(p.describe().contains(p.reason()), p.describe());
        }
        assertEquals(Kernels.present(), p.kernelsPresent());
        assertEquals(p.usable() && p.kernelsPresent(), p.ready());
        if (p.usable() && !p.kernelsPresent()) {
            assertTrue(p.whyNotReady().contains("no CUDA kernels"), p.whyNotReady());
        }
    }

    @Test
    void aMissingDriverIsReportedInOneLine() {
        String jcuda = """
                Error while loading native library "JCudaDriver-12.6.0-linux-x86_64"
                Stack trace from the attempt to load the library as a file:
                java.lang.UnsatisfiedLinkError: no JCudaDriver-12.6.0-linux-x86_64 in java.library.path: /usr/lib
                \tat java.base/java.lang.ClassLoader.loadLibrary(ClassLoader.java:2434)
                Stack trace from the attempt to load the library as a resource:
                java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver-12.6.0-linux-x86_64.so: libcuda.so.1: cannot open shared object file
                """;
        assertEquals("no CUDA driver: libcuda.so.1 cannot be loaded (no NVIDIA driver on this machine)", CudaProbe.linkFailure(jcuda));
        String other = CudaProbe.linkFailure(jcuda.replace("libcuda.so.1: cannot open shared object file", "wrong ELF class: ELFCLASS32"));
        assertTrue(other.endsWith("/tmp/libJCudaDriver-12.6.0-linux-x86_64.so: wrong ELF class: ELFCLASS32"), other);
        assertFalse(other.contains("\n"), other);
    }

    @Test
    void kernelListMatchesTheFatbinsOnTheClasspath() {
        for (String name : Kernels.names()) {
            assertTrue(Kernels.image(name).length > 0, name);
        }
        assertEquals(!Kernels.names().isEmpty(), Kernels.present());
    }

    @Test
    void aMissingKernelFileIsNamed() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Kernels.image("no_such_kernel"));
        assertTrue(e.getMessage().contains("kernels/no_such_kernel.fatbin"), e.getMessage());
        if (Kernels.names().isEmpty()) {
            assertTrue(e.getMessage().contains("without nvcc"), e.getMessage());
        } else {
            assertTrue(e.getMessage().contains(Kernels.names().getFirst()), e.getMessage());
        }
    }

    @Test
    void kernelArgumentsOfUnsupportedTypesAreRefused() {
        assertEquals(4, Kernel.parameters(1, 2L, 3f, null).length);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Kernel.parameters(1, 2.0));
        assertTrue(e.getMessage().contains("argument 1 is a java.lang.Double"), e.getMessage());
    }
}
