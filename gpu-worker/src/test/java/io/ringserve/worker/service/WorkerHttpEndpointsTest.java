package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.protocol.v1.GenerateEvent;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** Actuator over HTTP: probes, the deep health group, info and the Prometheus metrics a router reads. */
class WorkerHttpEndpointsTest extends WorkerTestSupport {
    static final JsonMapper JSON = JsonMapper.builder().build();

    /** Metric names (with their exported suffix) that routers and dashboards read. */
    static final List<String> METRICS = List.of(
            "vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
            "ringserve_kv_block_size", "ringserve_kv_total_blocks", "ringserve_kv_free_blocks",
            "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket", "vllm:time_per_output_token_seconds_bucket",
            "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:num_preemptions_total", "vllm:request_success_total",
            "ringserve_request_errors_total");

    JsonNode health(String path) throws Exception {
        HttpResponse<String> r = http(path);
        assertEquals(200, r.statusCode(), path + ": " + r.body());
        return JSON.readTree(r.body());
    }

    @Test
    void probesAndDeepHealthAreUp() throws Exception {
        JsonNode liveness = health("/actuator/health/liveness");
        assertEquals("UP", liveness.get("status").asString());
        assertEquals("UP", liveness.at("/components/engineLoop/status").asString(), liveness.toString());
        JsonNode readiness = health("/actuator/health/readiness");
        assertEquals("UP", readiness.get("status").asString());
        assertEquals("UP", readiness.at("/components/engineReadiness/status").asString(), readiness.toString());
        assertEquals(true, readiness.at("/components/engineReadiness/details/warm").asBoolean());
        JsonNode deep = health("/actuator/health/deep");
        assertEquals("UP", deep.get("status").asString(), deep.toString());
        assertEquals("UP", deep.at("/components/engine/status").asString(), deep.toString());
        assertTrue(deep.at("/components/engine/details/selfTestMillis").isNumber(), deep.toString());
        JsonNode info = health("/actuator/info");
        assertEquals("tiny-ring-a", info.at("/worker/modelId").asString(), info.toString());
        assertEquals(grpcServer.port(), info.at("/worker/grpcPort").asInt());
    }

    @Test
    void healthAnswersWhileTheEngineIsBusy() throws Exception {
        Call busy = Call.start(io.ringserve.protocol.v1.WorkerGrpc.newStub(channel()), greedy("busy", prompt(9, 16), 300, true), null);
        for (int i = 0; i < 3; i++) {
            assertEquals("UP", health("/actuator/health/deep").get("status").asString());
            assertEquals("UP", health("/actuator/health/readiness").get("status").asString());
        }
        busy.await();
        assertTrue(terminal(busy.events).hasFinished());
    }

    @Test
    void prometheusExportsVllmNamesWithCountsAfterARequest() throws Exception {
        List<GenerateEvent> events = generate(greedy("metrics", prompt(3, 10), 6, true));
        assertTrue(terminal(events).hasFinished());
        HttpResponse<String> r = http("/actuator/prometheus");
        assertEquals(200, r.statusCode());
        Map<String, Double> samples = r.body().lines().filter(l -> !l.startsWith("#") && !l.isBlank())
                .collect(Collectors.toMap(l -> l.substring(0, l.lastIndexOf(' ')), l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)),
                        (a, b) -> a));
        for (String name : METRICS) {
            assertTrue(samples.keySet().stream().anyMatch(k -> k.startsWith(name + "{")), name + " is not exported:\n" + r.body());
        }
        String model = "model_name=\"tiny-ring-a\"";
        assertTrue(samples.get("vllm:prompt_tokens_total{" + model + "}") >= 10, "prompt tokens");
        assertTrue(samples.get("vllm:generation_tokens_total{" + model + "}") >= 6, "generation tokens");
        assertTrue(samples.get("vllm:request_success_total{finished_reason=\"length\"," + model + "}") >= 1, "successful requests");
        assertTrue(samples.get("vllm:time_to_first_token_seconds_count{" + model + "}") >= 1, "time to first token");
        assertTrue(samples.get("vllm:inter_token_latency_seconds_count{" + model + "}") >= 5, "inter-token latency");
        assertEquals(worker.engine().kvTotalBlocks(), samples.get("ringserve_kv_total_blocks{" + model + "}"));
        assertEquals(16, samples.get("ringserve_kv_block_size{" + model + "}"));
        double usage = samples.get("vllm:kv_cache_usage_perc{" + model + "}");
        assertTrue(usage >= 0 && usage <= 1, "kv usage " + usage);
    }
}
