package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.fail;

import io.ringserve.worker.reference.Matrix;
import io.ringserve.worker.weights.Bf16;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;

/**
 * Base class of kernel tests: one {@link CudaDevice} per test class, opened on first use (so a class whose
 * {@link GpuTest}s are all skipped never touches the driver) and closed after the class; seeded random data;
 * NaN-poisoned outputs; and comparisons that report what went wrong (llm.c's {@code check_tensor}).
 *
 * <p>Tolerances by dtype: kernels read bf16 inputs and accumulate in fp32, so the reference runs on the same
 * bf16-rounded inputs in float32; a bf16 output is then compared with relative L2 error &lt;= 1e-2, an fp32
 * output of fp32 math with about 1e-5.
 */
public abstract class GpuTestSupport {
    private static CudaDevice device;

    /**
     * The class's device, current on the calling thread: GPU 0, or where there is none (a {@code @GpuTest(emulated =
     * true)}) an {@link CudaDevice#emulated} one.
     */
    protected static synchronized CudaDevice device() {
        if (device == null) {
            device = openDevice();
        }
        device.makeCurrent();
        return device;
    }

    /** Whether tests run on a GPU here (else on the CPU emulator, or not at all). */
    public static boolean onGpu() {
        return CudaProbe.probe().ready();
    }

    /**
     * A device of the caller's own, which the caller closes (e.g. one per pipeline stage, each with its own stream): GPU
     * 0, or an {@link CudaDevice#emulated} one where there is no GPU ({@link #onGpu()} false).
     */
    public static CudaDevice openDevice() {
        return onGpu() ? CudaDevice.open(0) : CpuKernels.device();
    }

    @BeforeEach
    protected void makeCurrentOnThisThread() {
        synchronized (GpuTestSupport.class) {
            if (device != null) {
                device.makeCurrent();
            }
        }
    }

    @AfterAll
    protected static synchronized void closeDevice() {
        if (device != null) {
            device.close();
            device = null;
        }
    }

    // ---- data --------------------------------------------------------------------------------------

    /** n floats uniform in [-scale, scale). */
    public static float[] randomFloats(long seed, int n, float scale) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    /** n bf16 bit patterns of values uniform in [-scale, scale), rounded to nearest even. */
    public static short[] randomBf16(long seed, int n, float scale) {
        return Bf16.fromFloat(randomFloats(seed, n, scale));
    }

    /** n ints uniform in [0, bound). */
    public static int[] randomInts(long seed, int n, int bound) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] v = new int[n];
        for (int i = 0; i < n; i++) {
            v[i] = r.nextInt(bound);
        }
        return v;
    }

    /** bf16 bits as the reference's {@link Matrix.Bf16} (rows, cols), little-endian as in a checkpoint. */
    public static Matrix.Bf16 bf16Matrix(short[] bits, int rows, int cols) {
        ByteBuffer b = ByteBuffer.allocate(2 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asShortBuffer().put(bits);
        return new Matrix.Bf16(MemorySegment.ofArray(b.array()), rows, cols);
    }

    // ---- device buffers ----------------------------------------------------------------------------

    public static DeviceBuffer upload(float[] data) {
        DeviceBuffer b = device().alloc(4L * Math.max(1, data.length));
        b.copyFromHost(data);
        return b;
    }

    public static DeviceBuffer upload(short[] data) {
        DeviceBuffer b = device().alloc(2L * Math.max(1, data.length));
        b.copyFromHost(data);
        return b;
    }

    public static DeviceBuffer upload(int[] data) {
        DeviceBuffer b = device().alloc(4L * Math.max(1, data.length));
        b.copyFromHost(data);
        return b;
    }

    /**
     * An output buffer of {@code bytes} filled with 0xFF bytes, which read as NaN both as float32 and as bf16,
     * so an element a kernel forgets to write fails the comparison.
     */
    public static DeviceBuffer poisoned(long bytes) {
        DeviceBuffer b = device().alloc(bytes);
        b.fill((byte) 0xFF);
        return b;
    }

    public static float[] downloadFloats(DeviceBuffer b, int n) {
        float[] v = new float[n];
        b.copyToHost(v);
        return v;
    }

    /** n bf16 values widened to float. */
    public static float[] downloadBf16(DeviceBuffer b, int n) {
        short[] v = new short[n];
        b.copyToHost(v);
        return Bf16.toFloat(v);
    }

    // ---- comparisons -------------------------------------------------------------------------------

    /** ||actual - expected||₂ / ||expected||₂ (the absolute L2 error when expected is all zeros). */
    public static double relativeL2(float[] expected, float[] actual) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = (double) actual[i] - expected[i];
            num += d * d;
            den += (double) expected[i] * expected[i];
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    /**
     * Fails unless {@code actual} has no NaN or infinity where {@code expected} is finite, its relative L2
     * error is at most {@code relL2} and no element is further than {@code maxAbs} from its expectation. The
     * message gives the relative L2 error, the max abs and max rel errors and the first bad index.
     */
    public static void assertClose(String what, float[] expected, float[] actual, double relL2, double maxAbs) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length);
        }
        double worstAbs = 0;
        double worstRel = 0;
        int worstAt = -1;
        int firstBad = -1;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            boolean bad;
            if (Double.isNaN(e) || Double.isInfinite(e)) {
                bad = Double.compare(a, e) != 0 && !(Double.isNaN(a) && Double.isNaN(e));
            } else if (!Double.isFinite(a)) {
                bad = true;
                worstAbs = Double.POSITIVE_INFINITY;
                worstAt = i;
            } else {
                double abs = Math.abs(a - e);
                if (abs > worstAbs) {
                    worstAbs = abs;
                    worstAt = i;
                }
                worstRel = Math.max(worstRel, abs / Math.max(Math.abs(e), 1e-30));
                bad = abs > maxAbs;
            }
            if (bad && firstBad < 0) {
                firstBad = i;
            }
        }
        double rel = relativeL2(expected, actual);
        if (firstBad >= 0 || !(rel <= relL2)) {
            String at = firstBad >= 0 ? String.format(Locale.ROOT, "; first bad index %d: %s, expected %s", firstBad, actual[firstBad], expected[firstBad])
                    : "";
            fail(String.format(Locale.ROOT, "%s: relative L2 error %.3e (limit %.1e), max abs error %.3e at %d (limit %.1e), max rel error %.3e%s",
                    what, rel, relL2, worstAbs, worstAt, maxAbs, worstRel, at));
        }
    }

    /** Fails unless the two arrays are bit for bit equal, naming the first difference. */
    public static void assertBitExact(String what, float[] expected, float[] actual) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length);
        }
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                int differing = 0;
                for (int j = i; j < expected.length; j++) {
                    differing += Float.floatToRawIntBits(expected[j]) != Float.floatToRawIntBits(actual[j]) ? 1 : 0;
                }
                fail(what + ": " + differing + " of " + expected.length + " values differ; first at index " + i + ": " + actual[i] + ", expected "
                        + expected[i]);
            }
        }
    }
}
