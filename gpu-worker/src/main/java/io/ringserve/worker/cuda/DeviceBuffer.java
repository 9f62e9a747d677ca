package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD8Async;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;

/**
 * A range of device memory: an allocation of {@link CudaDevice#alloc} (which {@link #close()} frees) or a
 * {@link #slice} of one (which owns nothing and is valid while its allocation is).
 *
 * <p>Copies with Java arrays: the synchronous methods queue the copy on the device's compute stream and wait
 * for it, so they see the results of kernels queued before them. The {@code Async} variants queue on the given
 * stream; since a Java array is pageable memory, the driver has taken the data when a host-to-device call
 * returns and has written it when a device-to-host call returns (that call waits for the stream's earlier
 * work), so the array can be reused at once. Overlapping copies with compute needs pinned host memory.
 */
public final class DeviceBuffer implements AutoCloseable {
    private final CudaDevice device;
    private final CUdeviceptr ptr;
    private final long bytes;
    /** Offset from the start of the allocation (which is 256-byte aligned): decides vector-load alignment. */
    private final long offset;
    private final DeviceBuffer root;
    /** An {@link CudaDevice#emulated} device's buffer: its host memory (else null), and the arena that frees it. */
    private final MemorySegment memory;
    private final Arena arena;
    private boolean freed;

    /** An allocation of {@code bytes} at {@code ptr}. */
    DeviceBuffer(CudaDevice device, CUdeviceptr ptr, long bytes) {
        this(device, ptr, bytes, null, null);
    }

    /** An emulated device's allocation: {@code bytes} of host memory, freed by closing {@code arena}. */
    DeviceBuffer(CudaDevice device, CUdeviceptr ptr, long bytes, MemorySegment memory, Arena arena) {
        this(device, ptr, bytes, 0, null, memory, arena);
    }

    private DeviceBuffer(CudaDevice device, CUdeviceptr ptr, long bytes, long offset, DeviceBuffer root, MemorySegment memory, Arena arena) {
        this.device = device;
        this.ptr = ptr;
        this.bytes = bytes;
        this.offset = offset;
        this.root = root;
        this.memory = memory;
        this.arena = arena;
    }

    /** An {@link CudaDevice#emulated} device's buffer: the host memory that stands for it (null on other devices). */
    MemorySegment hostMemory() {
        checkLive();
        return memory;
    }

    /** The device address, for kernel arguments. */
    public CUdeviceptr ptr() {
        checkLive();
        return ptr;
    }

    public long bytes() {
        return bytes;
    }

    public CudaDevice device() {
        return device;
    }

    /** Whether the address is a multiple of {@code alignment} bytes (a power of two up to 256). */
    public boolean aligned(int alignment) {
        if (alignment <= 0 || alignment > 256 || Integer.bitCount(alignment) != 1) {
            throw new IllegalArgumentException("alignment must be a power of two <= 256, got " + alignment);
        }
        return offset % alignment == 0;
    }

    /** {@code bytes} bytes from {@code offsetBytes} on, without ownership: closing the slice frees nothing. */
    public DeviceBuffer slice(long offsetBytes, long bytes) {
        checkLive();
        if (offsetBytes < 0 || bytes <= 0 || offsetBytes + bytes > this.bytes) {
            throw new IndexOutOfBoundsException("slice [" + offsetBytes + ", " + (offsetBytes + bytes) + ") of a " + this.bytes + "-byte buffer");
        }
        return new DeviceBuffer(device, ptr.withByteOffset(offsetBytes), bytes, offset + offsetBytes, root == null ? this : root,
                memory == null ? null : memory.asSlice(offsetBytes, bytes), null);
    }

    // ---- host -> device ----------------------------------------------------------------------------

    public void copyFromHost(float[] src) {
        copyFromHostAsync(src, device.stream());
        await();
    }

    public void copyFromHost(int[] src) {
        copyFromHostAsync(src, device.stream());
        await();
    }

    /** @param src bf16 bit patterns, or any 16-bit data */
    public void copyFromHost(short[] src) {
        copyFromHostAsync(src, device.stream());
        await();
    }

    public void copyFromHost(byte[] src) {
        copyFromHostAsync(src, device.stream());
        await();
    }

    public void copyFromHostAsync(float[] src, CUstream s) {
        toDevice(src, 4L * src.length, s);
    }

    public void copyFromHostAsync(int[] src, CUstream s) {
        toDevice(src, 4L * src.length, s);
    }

    public void copyFromHostAsync(short[] src, CUstream s) {
        toDevice(src, 2L * src.length, s);
    }

    public void copyFromHostAsync(byte[] src, CUstream s) {
        toDevice(src, src.length, s);
    }

    /** @param array a float[], int[], short[] or byte[] of {@code n} bytes */
    private void toDevice(Object array, long n, CUstream s) {
        checkLive();
        checkSize(n, "copy from the host");
        if (n > 0 && memory != null) {
            device.checkNotCapturing("copy to the device");
            MemorySegment.copy(heap(array), 0, memory, 0, n);
        } else if (n > 0 && !device.driverless()) {
            cuMemcpyHtoDAsync(ptr, pointer(array), n, s);
        }
    }

    // ---- device -> host ----------------------------------------------------------------------------

    /** Fills {@code dst} from the start of this buffer, after the compute stream's queued work. */
    public void copyToHost(float[] dst) {
        copyToHostAsync(dst, device.stream());
        await();
    }

    public void copyToHost(int[] dst) {
        copyToHostAsync(dst, device.stream());
        await();
    }

    public void copyToHost(short[] dst) {
        copyToHostAsync(dst, device.stream());
        await();
    }

    public void copyToHost(byte[] dst) {
        copyToHostAsync(dst, device.stream());
        await();
    }

    public void copyToHostAsync(float[] dst, CUstream s) {
        toHost(dst, 4L * dst.length, s);
    }

    public void copyToHostAsync(int[] dst, CUstream s) {
        toHost(dst, 4L * dst.length, s);
    }

    public void copyToHostAsync(short[] dst, CUstream s) {
        toHost(dst, 2L * dst.length, s);
    }

    public void copyToHostAsync(byte[] dst, CUstream s) {
        toHost(dst, dst.length, s);
    }

    /** @param array a float[], int[], short[] or byte[] of {@code n} bytes */
    private void toHost(Object array, long n, CUstream s) {
        checkLive();
        checkSize(n, "copy to the host");
        if (n > 0 && memory != null) {
            device.checkNotCapturing("copy to the host");
            MemorySegment.copy(memory, 0, heap(array), 0, n);
        } else if (n > 0 && !device.driverless()) { // driverless: dst keeps what it held
            cuMemcpyDtoHAsync(pointer(array), ptr, n, s);
        }
    }

    /** A Java array as the driver's host pointer. */
    private static Pointer pointer(Object array) {
        return switch (array) {
            case float[] a -> Pointer.to(a);
            case int[] a -> Pointer.to(a);
            case short[] a -> Pointer.to(a);
            case byte[] a -> Pointer.to(a);
            default -> throw new IllegalArgumentException("not a float, int, short or byte array: " + array.getClass().getName());
        };
    }

    /** A Java array as a heap segment, for an emulated device's copies. */
    private static MemorySegment heap(Object array) {
        return switch (array) {
            case float[] a -> MemorySegment.ofArray(a);
            case int[] a -> MemorySegment.ofArray(a);
            case short[] a -> MemorySegment.ofArray(a);
            case byte[] a -> MemorySegment.ofArray(a);
            default -> throw new IllegalArgumentException("not a float, int, short or byte array: " + array.getClass().getName());
        };
    }

    /** Copies {@code src} (host memory, e.g. a mapped checkpoint tensor) to {@code offset} of an emulated device's buffer. */
    void copyFromHostMemory(MemorySegment src, long offset) {
        checkLive();
        if (offset < 0 || offset + src.byteSize() > bytes) {
            throw new IndexOutOfBoundsException("copy of " + src.byteSize() + " bytes at offset " + offset + " into a " + bytes + "-byte device buffer");
        }
        device.checkNotCapturing("copy to the device");
        MemorySegment.copy(src, 0, memory, offset, src.byteSize());
    }

    // ---- fill --------------------------------------------------------------------------------------

    /** Sets every byte to {@code value} and waits (e.g. 0xFF makes every float and bf16 a NaN). */
    public void fill(byte value) {
        fillAsync(value, device.stream());
        await();
    }

    public void fillAsync(byte value, CUstream s) {
        checkLive();
        if (memory != null) {
            device.checkNotCapturing("fill device memory");
            memory.fill(value);
        } else if (!device.driverless()) {
            cuMemsetD8Async(ptr, value, bytes, s);
        }
    }

    /** Waits for the compute stream (the synchronous copies and fills); nothing to wait for on a driverless device. */
    private void await() {
        if (!device.driverless()) {
            cuStreamSynchronize(device.stream());
        }
    }

    private void checkSize(long n, String what) {
        if (n > bytes) {
            throw new IllegalArgumentException("cannot " + what + " " + n + " bytes: the buffer has " + bytes);
        }
    }

    private void checkLive() {
        if (freed || (root != null && root.freed)) {
            throw new IllegalStateException("device buffer used after close");
        }
    }

    /** Frees the allocation (a slice: nothing). Idempotent. */
    @Override
    public void close() {
        if (root != null || freed) {
            return;
        }
        freed = true;
        device.released(this);
        if (arena != null) {
            arena.close();
        } else if (!device.driverless()) {
            cuMemFree(ptr);
        }
    }
}
