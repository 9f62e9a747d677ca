package io.ringserve.worker.cuda;

import java.lang.StackWalker.StackFrame;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.stream.Collectors;
import jcuda.driver.CUstream;

/**
 * A {@link CudaDevice} without a GPU ({@link CudaDevice#driverless}) that records the launches of the kernel
 * wrappers built on it instead of running them, so a CPU test can check what would reach {@code cuLaunchKernel}.
 * Its buffers carry a size and no memory; use the device only to construct wrappers and call their launch methods
 * (copies, fills and the other driver calls would need a GPU).
 */
public final class RecordingDevice implements AutoCloseable {
    private static final StackWalker STACK = StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE);
    private static final CodeSource MAIN_CLASSES = Kernel.class.getProtectionDomain().getCodeSource();

    /**
     * One recorded launch.
     *
     * @param caller     the production method the test called that led to it (the outermost one on the stack), e.g.
     *                   {@code Matmul.launch(CUstream, DeviceBuffer, DeviceBuffer, DeviceBuffer, int, int, int, boolean)}
     * @param file       the kernel file, {@code src/main/cuda/<file>.cu}
     * @param kernel     the {@code extern "C" __global__} function
     * @param sharedBytes dynamic shared memory per block
     * @param args       the kernel arguments as passed ({@link DeviceBuffer}s, nulls, Integer, Long, Float)
     */
    public record Launch(String caller, String file, String kernel, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                         int sharedBytes, List<Object> args) {
        /** {@code <file>.<kernel>}. */
        public String name() {
            return file + "." + kernel;
        }
    }

    private final List<Launch> launches = new ArrayList<>();
    private final CudaDevice device = CudaDevice.driverless(this::record);

    /** The device to build wrappers on. */
    public CudaDevice device() {
        return device;
    }

    /** The device's stream (a placeholder the driver never saw). */
    public CUstream stream() {
        return device.stream();
    }

    /** A buffer of {@code bytes} bytes without memory. */
    public DeviceBuffer alloc(long bytes) {
        return device.alloc(bytes);
    }

    /** The launches recorded since the last call, in launch order; forgets them. */
    public synchronized List<Launch> take() {
        List<Launch> taken = List.copyOf(launches);
        launches.clear();
        return taken;
    }

    private synchronized void record(Kernel k, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes, Object[] args) {
        String name = k.name();
        int dot = name.indexOf('.');
        launches.add(new Launch(caller(), name.substring(0, dot), name.substring(dot + 1), gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                Collections.unmodifiableList(Arrays.asList(args))));
    }

    /** The outermost frame of a main (not test) class outside this package: the wrapper method the test called. */
    private static String caller() {
        List<StackFrame> production = STACK.walk(frames -> frames
                .filter(f -> Objects.equals(f.getDeclaringClass().getProtectionDomain().getCodeSource(), MAIN_CLASSES))
                .filter(f -> !f.getDeclaringClass().getPackageName().equals(Kernel.class.getPackageName()))
                .toList());
        return production.isEmpty() ? "(unknown caller)" : describe(production.getLast());
    }

    /** {@code Class.method(ParamType, ...)} with simple names (nested classes as {@code Outer.Inner}). */
    public static String describe(Class<?> type, String method, List<Class<?>> parameters) {
        return simpleName(type) + "." + method + parameters.stream().map(RecordingDevice::simpleName).collect(Collectors.joining(", ", "(", ")"));
    }

    private static String describe(StackFrame f) {
        return describe(f.getDeclaringClass(), f.getMethodName(), f.getMethodType().parameterList());
    }

    private static String simpleName(Class<?> c) {
        return c.getEnclosingClass() == null ? c.getSimpleName() : simpleName(c.getEnclosingClass()) + "." + c.getSimpleName();
    }

    /** Closes the device (nothing to free). */
    @Override
    public void close() {
        device.close();
    }
}
