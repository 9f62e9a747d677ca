package io.ringserve.worker.cuda;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/** Enables a {@link GpuTest} only where {@link CudaProbe} finds a usable GPU and this build has the kernels. */
public final class GpuCondition implements ExecutionCondition {
    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        CudaProbe.Probe probe = CudaProbe.probe();
        if (probe.ready()) {
            return ConditionEvaluationResult.enabled("GPU: " + probe.describe());
        }
        return ConditionEvaluationResult.disabled("no GPU to test on: " + probe.whyNotReady());
    }
}
