package io.ringserve.worker.cuda;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A test that needs a GPU and this build's CUDA kernels: use it instead of {@code @Test}. It is tagged
 * {@code gpu}, and {@link GpuCondition} skips it (never fails it) with the probe's reason when the machine
 * has no usable GPU or the build has no kernels, so a GPU-less {@code mvn verify} runs everything else.
 */
@Target({ElementType.METHOD, ElementType.ANNOTATION_TYPE})
@Retention(RetentionPolicy.RUNTIME)
@Test
@Tag("gpu")
@ExtendWith(GpuCondition.class)
public @interface GpuTest {
    /**
     * Also run it where there is no GPU, on an {@link CudaDevice#emulated} device whose kernels run on the CPU
     * ({@link CpuKernels}), when the build has the emulator; it then fails like any CPU test. For tests of what the
     * runner computes on small models; a GPU still runs it on the GPU.
     */
    boolean emulated() default false;
}
