package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;

import java.nio.charset.StandardCharsets;
import jcuda.CudaException;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

/**
 * Whether this process can run the CUDA backend: a CUDA driver that loads, a GPU of compute capability 8.0 or
 * newer (the kernels are built for sm_80 and sm_90a, plus compute_80 PTX), and kernels in this build. Probed
 * once per process and cached; {@link #probe()} never throws.
 */
public final class CudaProbe {
    /** The oldest GPU generation the kernels are built for (Ampere, sm_80). */
    static final int MIN_MAJOR = 8;

    private static final String JCUDA_NATIVES = "12.6.0 linux-x86_64";
    private static Probe cached;

    private CudaProbe() {
    }

    /**
     * What the probe found about GPU 0.
     *
     * @param usable                 a CUDA driver and a GPU of compute capability &gt;= 8.0 (whatever the kernels)
     * @param reason                 why the GPU is not usable; empty when it is
     * @param deviceName             the GPU's name, empty when none was found
     * @param totalMemory            the GPU's memory in bytes, 0 when none was found
     * @param computeCapabilityMajor e.g. 9 for an H100, 0 when none was found
     * @param minor                  the compute capability's minor version
     * @param kernelsPresent         this build's jar has the CUDA kernels (it was built where nvcc was found)
     */
    public record Probe(boolean usable, String reason, String deviceName, long totalMemory, int computeCapabilityMajor, int minor,
                        boolean kernelsPresent) {

        /** A usable GPU and the kernels to run on it. */
        public boolean ready() {
            return usable && kernelsPresent;
        }

        /** One line on why the CUDA backend cannot run here; empty when {@link #ready()}. */
        public String whyNotReady() {
            if (!usable) {
                return reason;
            }
            return kernelsPresent ? "" : Kernels.MISSING;
        }

        /** e.g. {@code NVIDIA H100 80GB HBM3 (compute capability 9.0, 79.1 GiB)}. */
        public String describe() {
            if (deviceName.isEmpty()) {
                return "no GPU (" + reason + ")";
            }
            return String.format(java.util.Locale.ROOT, "%s (compute capability %d.%d, %.1f GiB)", deviceName, computeCapabilityMajor, minor,
                    totalMemory / (double) (1L << 30));
        }
    }

    /** The cached result of probing the CUDA driver and GPU 0; the first call loads the driver. */
    public static synchronized Probe probe() {
        if (cached == null) {
            cached = run(Kernels.present());
        }
        return cached;
    }

    private static Probe run(boolean kernels) {
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] version = new int[1];
            cuDriverGetVersion(version);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            if (count[0] == 0) {
                return unusable("the CUDA driver (" + versionString(version[0]) + ") sees no GPU", kernels);
            }
            CUdevice device = new CUdevice();
            cuDeviceGet(device, 0);
            byte[] name = new byte[256];
            cuDeviceGetName(name, name.length, device);
            String deviceName = cString(name);
            long[] total = new long[1];
            cuDeviceTotalMem(total, device);
            int major = attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
            int minor = attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
            if (major < MIN_MAJOR) {
                return new Probe(false, deviceName + " has compute capability " + major + "." + minor + "; the CUDA kernels need 8.0 or newer",
                        deviceName, total[0], major, minor, kernels);
            }
            return new Probe(true, "", deviceName, total[0], major, minor, kernels);
        } catch (UnsatisfiedLinkError e) {
            return unusable(linkFailure(e.getMessage()), kernels);
        } catch (LinkageError e) {
            return unusable("the CUDA driver bindings (JCuda) could not be loaded: " + e, kernels);
        } catch (CudaException e) {
            return unusable("the CUDA driver failed: " + firstLine(e.getMessage()), kernels);
        } catch (RuntimeException e) {
            return unusable("probing the CUDA driver failed: " + e, kernels);
        }
    }

    private static Probe unusable(String reason, boolean kernels) {
        return new Probe(false, reason, "", 0, 0, 0, kernels);
    }

    static int attribute(CUdevice device, int attribute) {
        int[] v = new int[1];
        cuDeviceGetAttribute(v, attribute, device);
        return v[0];
    }

    private static String versionString(int v) {
        return "CUDA " + v / 1000 + "." + (v % 1000) / 10;
    }

    static String cString(byte[] bytes) {
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) {
            n++;
        }
        return new String(bytes, 0, n, StandardCharsets.US_ASCII).trim();
    }

    /**
     * JCuda's load error lists every attempt with stack traces; the cause that matters is the dynamic linker's
     * line from loading the bundled library (usually: no libcuda.so.1, i.e. no NVIDIA driver).
     */
    static String linkFailure(String message) {
        String m = message == null ? "" : message;
        if (m.contains("libcuda.so.1")) {
            return "no CUDA driver: libcuda.so.1 cannot be loaded (no NVIDIA driver on this machine)";
        }
        String cause = null;
        for (String line : m.split("\n")) {
            if (line.startsWith("java.lang.UnsatisfiedLinkError:")) {
                cause = line.substring("java.lang.UnsatisfiedLinkError:".length()).strip();
            }
        }
        return "the CUDA driver bindings (JCuda " + JCUDA_NATIVES + ") could not be loaded: " + (cause != null ? cause : firstLine(m));
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "no message";
        }
        String line = s.strip();
        int nl = line.indexOf('\n');
        return nl < 0 ? line : line.substring(0, nl).strip();
    }
}
