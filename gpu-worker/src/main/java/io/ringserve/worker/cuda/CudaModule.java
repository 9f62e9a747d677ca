package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.util.HashMap;
import java.util.Map;
import jcuda.CudaException;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

/** One loaded kernel file (a fatbin); hands out its {@code extern "C" __global__} functions by name. */
public final class CudaModule {
    private final String name;
    private final CUmodule module;
    /** Null in production; for a {@link CudaDevice#driverless} device's modules, where their kernels' launches go. */
    private final Kernel.Launcher launcher;
    private final Map<String, Kernel> kernels = new HashMap<>();

    CudaModule(String name, CUmodule module) {
        this(name, module, null);
    }

    /** @param launcher non-null (with a null {@code module}): a driverless device's module, whose kernels are not looked up */
    CudaModule(String name, CUmodule module, Kernel.Launcher launcher) {
        this.name = name;
        this.module = module;
        this.launcher = launcher;
    }

    public String name() {
        return name;
    }

    /**
     * The kernel {@code extern "C" __global__ void <kernel>(...)} of this file, looked up once and cached.
     *
     * @throws IllegalArgumentException when the file has no such kernel
     */
    public synchronized Kernel kernel(String kernel) {
        Kernel k = kernels.get(kernel);
        if (k == null && launcher != null) {
            k = new Kernel(name + "." + kernel, null, launcher);
            kernels.put(kernel, k);
        }
        if (k == null) {
            CUfunction f = new CUfunction();
            try {
                cuModuleGetFunction(f, module, kernel);
            } catch (CudaException e) {
                throw new IllegalArgumentException("kernels/" + name + ".fatbin has no kernel '" + kernel + "' (is it extern \"C\"?): " + e.getMessage(), e);
            }
            k = new Kernel(name + "." + kernel, f);
            kernels.put(kernel, k);
        }
        return k;
    }

    void unload() {
        if (module != null) {
            cuModuleUnload(module);
        }
    }
}
