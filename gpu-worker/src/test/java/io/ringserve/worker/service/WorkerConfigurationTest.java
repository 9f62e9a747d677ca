package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.worker.cuda.CudaProbe;
import io.ringserve.worker.reference.Golden;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/** Invalid configuration stops the worker at startup, and the report names the property at fault. */
@ExtendWith(OutputCaptureExtension.class)
class WorkerConfigurationTest {

    /** Starts the worker with these extra arguments, expects startup to fail, returns what was reported. */
    static String failedStartup(CapturedOutput output, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        for (String base : List.of("--ringserve.worker.model=" + Golden.dir("tiny-ring-a"), "--ringserve.worker.grpc-port=0",
                "--ringserve.worker.kv-cache-bytes=1MB")) {
            String key = base.substring(0, base.indexOf('=') + 1);
            if (all.stream().noneMatch(a -> a.startsWith(key))) {
                all.add(base);
            }
        }
        int before = output.length();
        Throwable e = assertThrows(Throwable.class,
                () -> new SpringApplicationBuilder(WorkerApplication.class).web(WebApplicationType.NONE).run(all.toArray(String[]::new)).close());
        StringBuilder chain = new StringBuilder(output.toString().substring(before));
        for (Throwable t = e; t != null; t = t.getCause()) {
            chain.append('\n').append(t);
        }
        return chain.toString();
    }

    @Test
    void outOfRangeValuesNameTheProperty(CapturedOutput output) {
        String report = failedStartup(output, "--ringserve.worker.max-running=0");
        assertTrue(report.contains("ringserve.worker.max-running"), report);
        assertTrue(report.contains("must be greater than or equal to 1"), report);

        report = failedStartup(output, "--ringserve.worker.kv-block-size=4096");
        assertTrue(report.contains("ringserve.worker.kv-block-size"), report);

        report = failedStartup(output, "--ringserve.worker.grpc-port=70000");
        assertTrue(report.contains("ringserve.worker.grpc-port"), report);

        report = failedStartup(output, "--ringserve.worker.kv-cache-bytes=0B");
        assertTrue(report.contains("ringserve.worker.kv-cache-bytes"), report);

        report = failedStartup(output, "--ringserve.worker.backend=tpu");
        assertTrue(report.contains("ringserve.worker.backend"), report);
    }

    @Test
    void cudaBackendWithoutAUsableGpuIsRefusedSayingWhy(CapturedOutput output) {
        CudaProbe.Probe probe = CudaProbe.probe();
        org.junit.jupiter.api.Assumptions.assumeFalse(probe.ready(), "this machine has a usable GPU");
        String report = failedStartup(output, "--ringserve.worker.backend=cuda");
        assertTrue(report.contains("ringserve.worker.backend"), report);
        assertTrue(report.contains("cuda was requested") && report.contains(probe.whyNotReady()), report);
    }

    @Test
    void unusableModelOrKvBudgetNamesTheProperty(CapturedOutput output) {
        String report = failedStartup(output, "--ringserve.worker.model=/nonexistent/model");
        assertTrue(report.contains("ringserve.worker.model"), report);
        assertTrue(report.contains("/nonexistent/model"), report);

        report = failedStartup(output, "--ringserve.worker.kv-cache-bytes=1KB");
        assertTrue(report.contains("ringserve.worker.kv-cache-bytes"), report);
        assertTrue(report.contains("smaller than one KV block"), report);
    }
}
