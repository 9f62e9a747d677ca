package io.ringserve.gateway;

import io.ringserve.gateway.api.ShutdownGate;
import org.junit.jupiter.api.Test;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.context.support.GenericApplicationContext;
import org.springframework.http.MediaType;
import org.springframework.test.web.reactive.server.WebTestClient;
import org.springframework.web.reactive.function.server.RouterFunctions;
import org.springframework.web.reactive.function.server.ServerResponse;

class GatewayShutdownGateTests {

    @Test
    void afterTheContextBeginsClosingNewGenerationRequestsGetA503ThatClosesTheConnection() {
        ShutdownGate gate = new ShutdownGate();
        WebTestClient client = WebTestClient.bindToRouterFunction(RouterFunctions.route()
                .POST("/v1/chat/completions", r -> ServerResponse.ok().bodyValue("{\"served\":true}"))
                .GET("/v1/models", r -> ServerResponse.ok().bodyValue("{\"data\":[]}"))
                .filter(gate)
                .build()).build();

        client.post().uri("/v1/chat/completions").contentType(MediaType.APPLICATION_JSON).bodyValue("{}").exchange()
                .expectStatus().isOk().expectBody().jsonPath("$.served").isEqualTo(true);

        try (GenericApplicationContext context = new GenericApplicationContext()) {
            gate.onApplicationEvent(new ContextClosedEvent(context));
        }

        client.post().uri("/v1/chat/completions").contentType(MediaType.APPLICATION_JSON).bodyValue("{}").exchange()
                .expectStatus().isEqualTo(503)
                .expectHeader().valueEquals("Retry-After", "1")
                .expectHeader().valueEquals("Connection", "close")
                .expectBody()
                .jsonPath("$.error.code").isEqualTo("shutting_down")
                .jsonPath("$.error.type").isEqualTo("server_error")
                .jsonPath("$.error.message").isEqualTo("The server is shutting down; retry the request.");
        // reads still answer while the process drains
        client.get().uri("/v1/models").exchange().expectStatus().isOk();
    }
}
