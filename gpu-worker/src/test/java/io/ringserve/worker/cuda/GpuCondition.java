package io.ringserve.worker.cuda;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Enables a {@link GpuTest} where {@link CudaProbe} finds a usable GPU and this build has the kernels; without one, a
 * {@code @GpuTest(emulated = true)} runs on the CPU emulation of the kernels when the build has it.
 */
public final class GpuCondition implements ExecutionCondition {
    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        CudaProbe.Probe probe = CudaProbe.probe();
        if (probe.ready()) {
            return ConditionEvaluationResult.enabled("GPU: " + probe.describe());
        }
        boolean emulated = context.getTestMethod().map(m -> m.getAnnotation(GpuTest.class)).map(GpuTest::emulated).orElse(false);
        if (emulated && CpuKernels.unavailable() == null) {
            return ConditionEvaluationResult.enabled("no GPU (" + probe.whyNotReady() + "): kernels emulated on the CPU");
        }
        return ConditionEvaluationResult.disabled("no GPU to test on: " + probe.whyNotReady()
                + (emulated ? "; and " + CpuKernels.unavailable() : ""));
    }
}
