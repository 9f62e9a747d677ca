package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

/** Memory, copies, slices and module loading on a real GPU. */
class CudaDeviceTest extends GpuTestSupport {

    @GpuTest
    void copiesRoundTripThroughSlices() {
        float[] data = randomFloats(1, 1000, 3f);
        try (DeviceBuffer b = device().alloc(4000)) {
            b.copyFromHost(data);
            float[] back = new float[1000];
            b.copyToHost(back);
            assertArrayEquals(data, back);

            DeviceBuffer tail = b.slice(4 * 900, 400);
            float[] part = new float[100];
            tail.copyToHost(part);
            assertArrayEquals(Arrays.copyOfRange(data, 900, 1000), part);
            assertTrue(tail.aligned(16));
            assertFalse(b.slice(2, 8).aligned(4));

            tail.fill((byte) 0);
            b.copyToHost(back);
            assertEquals(0f, back[950]);
            assertEquals(data[899], back[899]);
            assertThrows(IllegalArgumentException.class, () -> tail.copyFromHost(new float[101]));
            assertThrows(IndexOutOfBoundsException.class, () -> b.slice(3990, 20));
        }
    }

    @GpuTest
    void asyncCopiesAreOrderedOnTheirStream() {
        short[] bits = randomBf16(2, 333, 1f);
        var s = device().newStream();
        try (DeviceBuffer b = device().alloc(2 * 333)) {
            b.fillAsync((byte) 0xFF, s);
            b.copyFromHostAsync(bits, s);
            short[] back = new short[333];
            b.copyToHostAsync(back, s);
            assertArrayEquals(bits, back);
        }
        device().releaseStream(s);
        assertThrows(IllegalArgumentException.class, () -> device().releaseStream(s), "released once");
    }

    @GpuTest
    void bufferIsUnusableAfterClose() {
        DeviceBuffer b = device().alloc(64);
        DeviceBuffer s = b.slice(0, 32);
        b.close();
        b.close();
        assertThrows(IllegalStateException.class, b::ptr);
        assertThrows(IllegalStateException.class, s::ptr);
    }

    @GpuTest
    void memoryIsReportedAndAllocationsShowInIt() {
        long total = device().totalMemory();
        assertTrue(total > 0);
        long before = device().freeMemory();
        try (DeviceBuffer big = device().alloc(256L << 20)) {
            assertTrue(device().freeMemory() <= before - (200L << 20), "a 256 MiB allocation should show in the free memory");
            assertEquals(256L << 20, big.bytes());
        }
    }

    @GpuTest
    void kernelFilesLoadAndMissingOnesAreNamed() {
        for (String name : Kernels.names()) {
            CudaModule m = device().module(name);
            assertEquals(name, m.name());
            assertTrue(m == device().module(name), "modules are cached");
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> device().module("no_such_kernel"));
        assertTrue(e.getMessage().contains("kernels/no_such_kernel.fatbin"), e.getMessage());
        IllegalArgumentException k = assertThrows(IllegalArgumentException.class, () -> device().module("embedding").kernel("no_such_function"));
        assertTrue(k.getMessage().contains("no_such_function"), k.getMessage());
    }
}
