package io.ringserve.gateway;

import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalManagementPort;
import org.springframework.context.annotation.Import;
import org.springframework.test.web.reactive.server.WebTestClient;

@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
@Import(GatewayTestWorkers.class)
class GatewayHealthTests {

    @LocalManagementPort
    int managementPort;

    WebTestClient management() {
        return WebTestClient.bindToServer().baseUrl("http://localhost:" + managementPort).build();
    }

    @Test
    void livenessProbeReportsUp() {
        management().get().uri("/actuator/health/liveness").exchange()
                .expectStatus().isOk()
                .expectBody().jsonPath("$.status").isEqualTo("UP");
    }

    @Test
    void prometheusMetricsOnManagementPort() throws Exception {
        awaitReadiness(200);
        management().get().uri("/actuator/prometheus").exchange().expectStatus().isOk()
                .expectBody(String.class).value(body -> org.assertj.core.api.Assertions.assertThat(body)
                        .contains("ringserve_gateway_queue_size").contains("ringserve_gateway_workers_ready")
                        // one series per worker
                        .containsPattern("ringserve_gateway_worker_ready\\{[^}]*worker=\"w[12]:1\"[^}]*} 1")
                        .containsPattern("ringserve_gateway_worker_in_flight\\{[^}]*worker=")
                        .containsPattern("ringserve_gateway_worker_kv_usage\\{[^}]*worker="));
    }

    @Test
    void apiIsNotServedOnManagementPortAndActuatorNotOnApiPort() {
        management().get().uri("/v1/models").exchange().expectStatus().isNotFound();
    }

    @Test
    void readinessFollowsWorkerHealth() throws Exception {
        try {
            GatewayTestWorkers.W1.serving(false);
            GatewayTestWorkers.W2.serving(false);
            awaitReadiness(503);
            GatewayTestWorkers.W1.serving(true);
            GatewayTestWorkers.W2.serving(true);
            awaitReadiness(200);
        } finally {
            GatewayTestWorkers.W1.serving(true);
            GatewayTestWorkers.W2.serving(true);
        }
    }

    private void awaitReadiness(int status) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 5000;
        int last = -1;
        while (System.currentTimeMillis() < deadline) {
            last = management().get().uri("/actuator/health/readiness").exchange().returnResult(String.class)
                    .getStatus().value();
            if (last == status) {
                return;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("readiness stayed " + last);
    }
}
