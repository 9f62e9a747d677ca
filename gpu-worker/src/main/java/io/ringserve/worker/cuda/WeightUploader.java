package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.lang.foreign.MemorySegment;
import java.util.function.LongConsumer;
import jcuda.Pointer;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;

/**
 * Copies host memory (the memory-mapped tensors of a safetensors checkpoint) to device buffers through two
 * pinned staging buffers used in turn: while the GPU copies chunk i out of one, the host reads chunk i+1 from
 * the file into the other. Pageable memory cannot be copied asynchronously; pinned memory can, at the full
 * PCIe rate. One uploader per loading thread; {@link #finish()} waits for the copies queued so far.
 */
public final class WeightUploader implements AutoCloseable {
    /** Bytes per staging buffer. */
    static final int CHUNK = 16 << 20;

    private final CUstream stream;
    /** An emulated device's buffers are host memory: copied into directly, no staging. */
    private final boolean direct;
    private final Pointer[] pinned = new Pointer[2];
    private final MemorySegment[] staging = new MemorySegment[2];
    private final CUevent[] free = new CUevent[2];
    private final LongConsumer progress;
    private int next;
    private long uploaded;
    private boolean closed;

    /**
     * @param progress told the bytes queued so far after each chunk (for load progress); may be null
     */
    public WeightUploader(CudaDevice device, LongConsumer progress) {
        this.stream = device.newStream();
        this.progress = progress == null ? b -> { } : progress;
        this.direct = device.hostMemory();
        for (int i = 0; i < 2 && !direct; i++) {
            pinned[i] = new Pointer();
            cuMemAllocHost(pinned[i], CHUNK);
            staging[i] = MemorySegment.ofBuffer(pinned[i].getByteBuffer(0, CHUNK));
            free[i] = new CUevent();
            cuEventCreate(free[i], CUevent_flags.CU_EVENT_DISABLE_TIMING);
            cuEventRecord(free[i], stream);
        }
    }

    /**
     * Queues the copy of {@code src} into {@code dst} at {@code dstOffset}; returns once every chunk is in a
     * staging buffer (the last ones may still be on their way to the device).
     */
    public void upload(MemorySegment src, DeviceBuffer dst, long dstOffset) {
        if (closed) {
            throw new IllegalStateException("the weight uploader is closed");
        }
        long n = src.byteSize();
        if (dstOffset < 0 || dstOffset + n > dst.bytes()) {
            throw new IndexOutOfBoundsException("copy of " + n + " bytes at offset " + dstOffset + " into a " + dst.bytes() + "-byte device buffer");
        }
        if (direct) {
            dst.copyFromHostMemory(src, dstOffset);
            uploaded += n;
            progress.accept(uploaded);
            return;
        }
        for (long off = 0; off < n; off += CHUNK) {
            int len = (int) Math.min(CHUNK, n - off);
            int i = next;
            next ^= 1;
            cuEventSynchronize(free[i]); // the device has finished reading this staging buffer
            MemorySegment.copy(src, off, staging[i], 0, len);
            cuMemcpyHtoDAsync(dst.ptr().withByteOffset(dstOffset + off), pinned[i], len, stream);
            cuEventRecord(free[i], stream);
            uploaded += len;
            progress.accept(uploaded);
        }
    }

    /** Bytes queued so far. */
    public long uploaded() {
        return uploaded;
    }

    /** Waits until every queued copy has reached the device. */
    public void finish() {
        if (!direct) {
            cuStreamSynchronize(stream);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        finish();
        for (int i = 0; i < 2 && !direct; i++) {
            cuEventDestroy(free[i]);
            cuMemFreeHost(pinned[i]);
        }
    }
}
