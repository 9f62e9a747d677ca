package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUstream;

/**
 * One {@code __global__} function. Launches pack their arguments as the kernel's parameter array: a
 * {@link DeviceBuffer} or {@link CUdeviceptr} becomes a device pointer ({@code null}: a null pointer), an
 * {@link Integer} an {@code int}, a {@link Long} a {@code long long}, a {@link Float} a {@code float}. The
 * caller must match the kernel's C signature in order and type; the driver cannot check it. Only the kernel
 * wrappers in {@code io.ringserve.worker.cuda.ops} call these.
 *
 * <p>The two {@code launch} overloads meet in Java's overload resolution: a 3-D launch written with loose
 * arguments is ambiguous (a compile error), so pass them as one array, {@code launch(s, gx, gy, 1, 256, 1, 1, 0,
 * Kernel.args(out, in, n))}. A 1-D launch whose first kernel argument is a buffer needs nothing special.
 */
public final class Kernel {
    private final String name;
    private final CUfunction function;
    /** Null in production; set only for the kernels of a {@link CudaDevice#driverless} device. */
    private final Launcher launcher;
    private int maxDynamicShared = 48 * 1024;

    Kernel(String name, CUfunction function) {
        this(name, function, null);
    }

    /** @param launcher null: launches go to the driver (production); else they go to it instead (tests). */
    Kernel(String name, CUfunction function, Launcher launcher) {
        this.name = name;
        this.function = function;
        this.launcher = launcher;
    }

    /**
     * Test seam: where the kernels of a {@link CudaDevice#driverless} device send their launches instead of
     * {@code cuLaunchKernel}, after the same checks of the launch shape and argument types a real launch makes.
     * Production kernels have none. {@code kernel} is the launching kernel ({@link #name()}: {@code <file>.<kernel>}),
     * {@code args} a copy of its argument array.
     */
    @FunctionalInterface
    interface Launcher {
        void launch(Kernel kernel, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes, Object[] args);
    }

    /** {@code <file>.<kernel>}. */
    public String name() {
        return name;
    }

    /**
     * Queues the kernel on stream {@code s} with a 3-D grid and block.
     *
     * @param sharedBytes dynamic shared memory per block; above 48 KiB the kernel's limit is raised first
     */
    public void launch(CUstream s, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes, Object... args) {
        if (gridX < 1 || gridY < 1 || gridZ < 1 || blockX < 1 || blockY < 1 || blockZ < 1 || sharedBytes < 0) {
            throw new IllegalArgumentException(name + ": grid (" + gridX + ", " + gridY + ", " + gridZ + "), block (" + blockX + ", " + blockY
                    + ", " + blockZ + "), shared " + sharedBytes + " bytes is not a launch");
        }
        if (launcher != null) {
            parameters(args); // the argument checks of a real launch
            launcher.launch(this, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, args.clone());
            return;
        }
        if (sharedBytes > maxDynamicShared) {
            raiseSharedLimit(sharedBytes);
        }
        cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, s, Pointer.to(parameters(args)), null);
    }

    /** Queues the kernel with a 1-D grid and block. */
    public void launch(CUstream s, int grid, int block, int shared, Object... args) {
        launch(s, grid, 1, 1, block, 1, 1, shared, args);
    }

    /** The kernel arguments as one array: what a 3-D {@link #launch} takes to be unambiguous. */
    public static Object[] args(Object... args) {
        return args;
    }

    private synchronized void raiseSharedLimit(int bytes) {
        if (bytes > maxDynamicShared) {
            cuFuncSetAttribute(function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
            maxDynamicShared = bytes;
        }
    }

    static Pointer[] parameters(Object... args) {
        Pointer[] p = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            p[i] = switch (args[i]) {
                case null -> Pointer.to(new long[] {0L});
                case DeviceBuffer b -> Pointer.to(b.ptr());
                case CUdeviceptr d -> Pointer.to(d);
                case Integer v -> Pointer.to(new int[] {v});
                case Long v -> Pointer.to(new long[] {v});
                case Float v -> Pointer.to(new float[] {v});
                default -> throw new IllegalArgumentException("kernel argument " + i + " is a " + args[i].getClass().getName()
                        + "; pass a DeviceBuffer, CUdeviceptr, Integer, Long or Float");
            };
        }
        return p;
    }
}
