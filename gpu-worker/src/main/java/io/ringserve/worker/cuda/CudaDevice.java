package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * One GPU as the engine uses it: its primary context, a compute stream, device memory and the kernel modules
 * loaded from this build's fatbins. Every driver call reports failure as a {@link jcuda.CudaException}
 * ({@code JCudaDriver.setExceptionsEnabled(true)}), never as a return code.
 *
 * <p>A CUDA context is current per thread: {@link #open} makes it current on the opening thread; any other
 * thread calls {@link #makeCurrent()} once before it uses the device. Streams are non-blocking (they never wait
 * for the legacy default stream), and the synchronous copies of {@link DeviceBuffer} run on the compute stream,
 * so they are ordered after the kernels queued there.
 *
 * <p>{@link #close()} frees every buffer still allocated, the modules and the streams, and releases the context.
 *
 * <p>Tests of the kernel wrappers' launch arguments use a {@link #driverless} device instead, which needs no GPU; tests
 * of what the CUDA runner computes can use an {@link #emulated} one, whose kernels run on the CPU.
 */
public final class CudaDevice implements AutoCloseable {
    private final int ordinal;
    private final CUdevice device;
    private final CUcontext context;
    private final CUstream stream;
    private final String name;
    private final List<CUstream> streams = new ArrayList<>();
    private final Map<String, CudaModule> modules = new HashMap<>();
    private final Set<DeviceBuffer> buffers = Collections.newSetFromMap(new IdentityHashMap<>());
    /** What a {@link #driverless} device reports as its memory, all free: an 80 GB H100's. */
    static final long DRIVERLESS_MEMORY = 80L << 30;
    /** A driverless device's buffers' bytes (what its freeMemory subtracts). */
    private long driverlessInUse;
    /** Null for a real device; a {@link #driverless} device's kernels launch through it into {@link #target}. */
    private final Kernel.Launcher launcher;
    private final Kernel.Launcher target;
    /** An {@link #emulated} device: buffers are host memory. */
    private final boolean hostMemory;
    /** A device without a driver while it captures a graph: the launches recorded instead of run. */
    private List<Runnable> capturing;
    private boolean closed;

    private CudaDevice(int ordinal, CUdevice device, CUcontext context, CUstream stream, String name, Kernel.Launcher target, boolean hostMemory) {
        this.ordinal = ordinal;
        this.device = device;
        this.context = context;
        this.stream = stream;
        this.name = name;
        this.target = target;
        this.launcher = target == null ? null : this::dispatch;
        this.hostMemory = hostMemory;
    }

    /**
     * Retains GPU {@code ordinal}'s primary context (the one the CUDA runtime and tools share), makes it current
     * on this thread and creates the compute stream.
     */
    public static CudaDevice open(int ordinal) {
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        CUdevice device = new CUdevice();
        cuDeviceGet(device, ordinal);
        CUcontext context = new CUcontext();
        cuDevicePrimaryCtxRetain(context, device);
        try {
            cuCtxSetCurrent(context);
            CUstream stream = new CUstream();
            cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
            byte[] name = new byte[256];
            cuDeviceGetName(name, name.length, device);
            return new CudaDevice(ordinal, device, context, stream, CudaProbe.cString(name), null, false);
        } catch (RuntimeException e) {
            cuDevicePrimaryCtxRelease(device);
            throw e;
        }
    }

    /**
     * Test seam: a device without a GPU, for CPU tests of what the kernel wrappers launch. Nothing here calls the
     * driver: {@link #module} loads no image and its kernels hand every launch to {@code launcher} (after a real
     * launch's checks) instead of {@code cuLaunchKernel}; {@link #alloc} returns buffers that carry their size
     * but own no memory (a null device address, never dereferenced; they may be sliced, and closing one frees
     * nothing); their copies and fills do nothing (a copy to the host leaves the array as it was);
     * {@link #stream()} and {@link #newStream()} are stream objects the driver never created; {@link #makeCurrent},
     * {@link #synchronize} and {@link #close()} do nothing more than check or mark the device open; the memory is
     * {@link #DRIVERLESS_MEMORY}, free but for its live buffers' sizes. So a {@code CudaRunner} without graphs and
     * dual streams can run whole steps on it, its launches recorded, and buffers can be sized on it without a GPU.
     * Events do nothing; a {@link #capture} records the launches and its graph hands them to {@code launcher} again
     * on each {@link #launch(CudaGraph, CUstream)}. Pinned memory needs the driver.
     */
    static CudaDevice driverless(Kernel.Launcher launcher) {
        if (launcher == null) {
            throw new IllegalArgumentException("a driverless device needs a launcher");
        }
        return new CudaDevice(-1, null, null, new CUstream(), "driverless (kernel launches recorded, no GPU)", launcher, false);
    }

    /**
     * Test seam: a {@link #driverless} device whose buffers are host memory, for a {@code launcher} that runs each
     * kernel on the CPU at once (the launch order is then the only order, so one stream and events that do nothing
     * are exact). Allocations are filled with 0xFF bytes, which read as NaN in float32 and bf16, as uninitialised
     * device memory may; copies and fills are done at once; a copy or fill while a graph is being captured fails, as
     * it would in the driver's thread-local capture mode. Weights load without pinned staging buffers.
     */
    static CudaDevice emulated(Kernel.Launcher launcher) {
        if (launcher == null) {
            throw new IllegalArgumentException("an emulated device needs a launcher");
        }
        return new CudaDevice(-1, null, null, new CUstream(), "CPU emulation (kernels run on the host)", launcher, true);
    }

    private void dispatch(Kernel k, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes, Object[] args) {
        List<Runnable> graph;
        synchronized (this) {
            graph = capturing;
        }
        if (graph != null) {
            graph.add(() -> target.launch(k, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, args));
        } else {
            target.launch(k, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, args);
        }
    }

    /** The device's name, e.g. {@code NVIDIA H100 80GB HBM3}. */
    public String name() {
        return name;
    }

    public int ordinal() {
        return ordinal;
    }

    /** Makes this device's context current on the calling thread (contexts are per thread). */
    public void makeCurrent() {
        checkOpen();
        if (launcher == null) {
            cuCtxSetCurrent(context);
        }
    }

    /** The compute stream: kernels, and the copies of {@link DeviceBuffer}'s synchronous methods. */
    public CUstream stream() {
        return stream;
    }

    /** A further non-blocking stream (e.g. the second branch of a MoE layer), destroyed with the device. */
    public synchronized CUstream newStream() {
        checkOpen();
        CUstream s = new CUstream();
        if (launcher == null) {
            cuStreamCreate(s, CUstream_flags.CU_STREAM_NON_BLOCKING);
        }
        streams.add(s);
        return s;
    }

    /** Destroys a stream of {@link #newStream} now (after its queued work) rather than with the device. */
    public synchronized void releaseStream(CUstream s) {
        checkOpen();
        if (!streams.remove(s)) {
            throw new IllegalArgumentException("not a stream of this device's newStream()");
        }
        if (launcher == null) {
            cuStreamDestroy(s);
        }
    }

    /**
     * Allocates device memory (uninitialised; 256-byte aligned).
     *
     * @param bytes at least 1
     */
    public DeviceBuffer alloc(long bytes) {
        checkOpen();
        if (bytes <= 0) {
            throw new IllegalArgumentException("cannot allocate " + bytes + " bytes of device memory");
        }
        CUdeviceptr ptr = new CUdeviceptr();
        if (hostMemory) {
            Arena arena = Arena.ofShared();
            MemorySegment memory = arena.allocate(bytes, 256);
            memory.fill((byte) 0xFF);
            DeviceBuffer b = new DeviceBuffer(this, ptr, bytes, memory, arena);
            synchronized (this) {
                driverlessInUse += bytes;
                buffers.add(b);
            }
            return b;
        }
        if (launcher != null) {
            synchronized (this) {
                driverlessInUse += bytes;
            }
            return new DeviceBuffer(this, ptr, bytes); // driverless: a size, no memory, not tracked
        }
        cuMemAlloc(ptr, bytes);
        DeviceBuffer b = new DeviceBuffer(this, ptr, bytes);
        synchronized (this) {
            buffers.add(b);
        }
        return b;
    }

    /** Whether this is a {@link #driverless} (or {@link #emulated}) device: no driver call may be made. */
    boolean driverless() {
        return launcher != null;
    }

    /** Whether this is an {@link #emulated} device, whose buffers are host memory. */
    boolean hostMemory() {
        return hostMemory;
    }

    /** An emulated device's copies and fills: refused while a graph is being captured (the driver would refuse them). */
    synchronized void checkNotCapturing(String what) {
        if (capturing != null) {
            throw new IllegalStateException("cannot " + what + " while a CUDA graph is being captured");
        }
    }

    // ---- events and graphs -------------------------------------------------------------------------

    /** An event without timing, for ordering streams ({@link #record}, {@link #await}). */
    public CUevent newEvent() {
        checkOpen();
        CUevent e = new CUevent();
        if (launcher == null) {
            JCudaDriver.cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING);
        }
        return e;
    }

    /** Records {@code e} on {@code s}: it completes once the work queued on {@code s} so far has run. */
    public void record(CUevent e, CUstream s) {
        if (launcher == null) {
            JCudaDriver.cuEventRecord(e, s);
        }
    }

    /** Makes the work queued on {@code s} from now on wait for {@code e}. */
    public void await(CUstream s, CUevent e) {
        if (launcher == null) {
            JCudaDriver.cuStreamWaitEvent(s, e, 0);
        }
    }

    public void destroy(CUevent e) {
        if (launcher == null) {
            JCudaDriver.cuEventDestroy(e);
        }
    }

    /**
     * Captures what {@code body} queues on {@code stream} (and on streams it forks from it with events, which must
     * join back) as one graph and instantiates it. Thread-local capture mode: this thread may make no unsafe call
     * (synchronous copy, allocation, synchronisation) while {@code body} runs; the kernel wrappers' shape checks are
     * host-only. Nothing runs on the device during capture. A device without a driver records the launches instead.
     */
    public CudaGraph capture(CUstream stream, Runnable body) {
        checkOpen();
        if (launcher != null) {
            List<Runnable> launches = new ArrayList<>();
            synchronized (this) {
                if (capturing != null) {
                    throw new IllegalStateException("a CUDA graph is being captured already");
                }
                capturing = launches;
            }
            try {
                body.run();
            } finally {
                synchronized (this) {
                    capturing = null;
                }
            }
            return new CudaGraph.Recorded(List.copyOf(launches));
        }
        cuStreamBeginCapture(stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
        CUgraph graph = new CUgraph();
        try {
            body.run();
        } catch (RuntimeException | Error e) {
            // leave capture mode so the stream works again; the capture may have been invalidated (no graph then)
            try {
                cuStreamEndCapture(stream, graph);
                cuGraphDestroy(graph);
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        cuStreamEndCapture(stream, graph);
        CUgraphExec exec = new CUgraphExec();
        try {
            cuGraphInstantiate(exec, graph, 0L);
        } finally {
            cuGraphDestroy(graph); // the executable does not need it
        }
        return new CudaGraph.Instantiated(exec);
    }

    /** Queues one replay of {@code g} on {@code s}. */
    public void launch(CudaGraph g, CUstream s) {
        checkOpen();
        switch (g) {
            case CudaGraph.Instantiated i -> cuGraphLaunch(i.exec(), s);
            case CudaGraph.Recorded r -> r.launches().forEach(Runnable::run);
        }
    }

    /** Frees {@code g} (after the replays queued so far: the caller synchronises first). */
    public void destroy(CudaGraph g) {
        if (g instanceof CudaGraph.Instantiated i) {
            cuGraphExecDestroy(i.exec());
        }
    }

    synchronized void released(DeviceBuffer b) {
        buffers.remove(b);
        if (launcher != null) {
            driverlessInUse -= b.bytes();
        }
    }

    /**
     * The module of one kernel file, {@code src/main/cuda/<name>.cu}, loaded from the classpath resource
     * {@code /kernels/<name>.fatbin} on first use (the driver picks the cubin for this GPU or JIT-compiles the
     * PTX) and cached.
     *
     * @throws IllegalStateException naming the kernel file when this build does not have it (built without nvcc)
     */
    public synchronized CudaModule module(String name) {
        checkOpen();
        CudaModule m = modules.get(name);
        if (m == null && launcher != null) {
            m = new CudaModule(name, null, launcher);
            modules.put(name, m);
        }
        if (m == null) {
            byte[] image = Kernels.image(name);
            CUmodule module = new CUmodule();
            cuModuleLoadData(module, image);
            m = new CudaModule(name, module);
            modules.put(name, m);
        }
        return m;
    }

    /** Waits until every stream of this device has finished its queued work. */
    public void synchronize() {
        checkOpen();
        if (launcher == null) {
            cuCtxSynchronize();
        }
    }

    /** Device memory not in use, in bytes, as the driver reports it now (a driverless device: less its buffers). */
    public long freeMemory() {
        if (launcher != null) {
            synchronized (this) {
                return DRIVERLESS_MEMORY - driverlessInUse;
            }
        }
        long[] free = new long[1];
        long[] total = new long[1];
        cuMemGetInfo(free, total);
        return free[0];
    }

    /** The device's memory in bytes. */
    public long totalMemory() {
        if (launcher != null) {
            return DRIVERLESS_MEMORY;
        }
        long[] free = new long[1];
        long[] total = new long[1];
        cuMemGetInfo(free, total);
        return total[0];
    }

    /** A device attribute ({@link CUdevice_attribute}), e.g. the multiprocessor count. */
    public int attribute(int attribute) {
        return CudaProbe.attribute(device, attribute);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("CUDA device " + ordinal + " is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (launcher != null) {
            for (DeviceBuffer b : List.copyOf(buffers)) {
                b.close(); // an emulated device's host memory
            }
            closed = true;
            return;
        }
        cuCtxSetCurrent(context);
        try {
            cuCtxSynchronize();
        } finally {
            for (DeviceBuffer b : List.copyOf(buffers)) {
                b.close();
            }
            for (CudaModule m : modules.values()) {
                m.unload();
            }
            modules.clear();
            for (CUstream s : streams) {
                cuStreamDestroy(s);
            }
            cuStreamDestroy(stream);
            closed = true;
            cuDevicePrimaryCtxRelease(device);
        }
    }
}
