package io.ringserve.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ringserve.gateway.console.AdminKeyFilter;
import io.ringserve.gateway.console.ConsoleProperties;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalManagementPort;
import org.springframework.boot.webtestclient.autoconfigure.AutoConfigureWebTestClient;
import org.springframework.context.annotation.Import;
import org.springframework.core.ParameterizedTypeReference;
import org.springframework.http.MediaType;
import org.springframework.http.codec.ServerSentEvent;
import org.springframework.test.web.reactive.server.WebTestClient;
import reactor.test.StepVerifier;

/** The console pages, their assets and the admin-key guarded console API. */
class GatewayConsoleTests {

    @SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
            properties = "ringserve.gateway.admin-keys=admin-test")
    @AutoConfigureWebTestClient
    @Import(GatewayTestWorkers.class)
    @Nested
    class WithAdminKeys {
        @Autowired
        WebTestClient client;

        @LocalManagementPort
        int managementPort;

        @Test
        void pagesAreServedWithoutKeysAndWithAContentSecurityPolicy() {
            for (String path : List.of("/", "/console")) {
                client.get().uri(path).exchange().expectStatus().isOk()
                        .expectHeader().contentTypeCompatibleWith(MediaType.TEXT_HTML)
                        .expectHeader().value("Content-Security-Policy", csp -> assertThat(csp)
                                .contains("script-src 'self'").contains("default-src 'none'").doesNotContain("unsafe"))
                        .expectHeader().valueEquals("X-Content-Type-Options", "nosniff")
                        .expectBody(String.class).value(html -> assertThat(html)
                                .contains(path.equals("/") ? "/ui/playground.js" : "/ui/operations.js"));
            }
        }

        @Test
        void scriptsAndStylesAreStaticResources() {
            for (String asset : List.of("/ui/playground.js", "/ui/operations.js", "/ui/markdown.js", "/ui/sse.js", "/ui/common.js")) {
                client.get().uri(asset).exchange().expectStatus().isOk()
                        .expectHeader().value("Content-Type", t -> assertThat(t).contains("javascript"));
            }
            client.get().uri("/ui/console.css").exchange().expectStatus().isOk()
                    .expectHeader().contentTypeCompatibleWith(MediaType.parseMediaType("text/css"));
        }

        @Test
        void consoleApiNeedsAnAdminKeyNotAnApiKey() {
            client.get().uri("/console/api/state").exchange().expectStatus().isUnauthorized()
                    .expectBody().jsonPath("$.error.code").isEqualTo("invalid_admin_key")
                    .jsonPath("$.error.message").value(m -> assertThat((String) m).contains("admin key is required"));
            client.get().uri("/console/api/state").header("Authorization", "Bearer sk-test").exchange()
                    .expectStatus().isUnauthorized()
                    .expectBody().jsonPath("$.error.message").isEqualTo("Incorrect admin key provided.");
            client.get().uri("/console/api/events").header("Authorization", "Bearer nope").exchange()
                    .expectStatus().isUnauthorized();
        }

        @Test
        void stateListsEveryWorkerWithItsLoadBreakerAndTheQueue() {
            client.mutate().responseTimeout(Duration.ofSeconds(5)).build()
                    .get().uri("/console/api/state").header("Authorization", "Bearer admin-test").exchange()
                    .expectStatus().isOk()
                    .expectHeader().contentTypeCompatibleWith(MediaType.APPLICATION_JSON)
                    .expectBody()
                    .jsonPath("$.gateway.model").isEqualTo("tiny-ring")
                    .jsonPath("$.gateway.apiAuth").isEqualTo(true)
                    .jsonPath("$.gateway.queue.capacity").isEqualTo(1)
                    .jsonPath("$.gateway.admitted").isNumber()
                    .jsonPath("$.gateway.rejected.total").isNumber()
                    .jsonPath("$.workers.length()").isEqualTo(2)
                    .jsonPath("$.workers[0].address").isEqualTo("w1:1")
                    .jsonPath("$.workers[1].address").isEqualTo("w2:1")
                    .jsonPath("$.workers[0].breaker.state").isEqualTo("CLOSED")
                    .jsonPath("$.workers[0].running").isNumber()
                    .jsonPath("$.workers[0].kvUsage").isNumber()
                    .jsonPath("$.workers[0].inFlight").isNumber();
        }

        @Test
        void eventsStreamSnapshots() {
            var events = client.mutate().responseTimeout(Duration.ofSeconds(10)).build()
                    .get().uri("/console/api/events").header("Authorization", "Bearer admin-test")
                    .accept(MediaType.TEXT_EVENT_STREAM).exchange()
                    .expectStatus().isOk()
                    .returnResult(new ParameterizedTypeReference<ServerSentEvent<String>>() { })
                    .getResponseBody();
            StepVerifier.create(events.take(2))
                    .assertNext(e -> {
                        assertThat(e.event()).isEqualTo("state");
                        assertThat(e.data()).contains("\"workers\":[").contains("\"queue\":");
                    })
                    .assertNext(e -> assertThat(e.event()).isEqualTo("state"))
                    .expectComplete()
                    .verify(Duration.ofSeconds(10));
        }

        @Test
        void consoleIsNotOnTheManagementPort() {
            WebTestClient.bindToServer().baseUrl("http://localhost:" + managementPort).build()
                    .get().uri("/console/api/state").header("Authorization", "Bearer admin-test").exchange()
                    .expectStatus().isNotFound();
        }
    }

    @SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
    @AutoConfigureWebTestClient
    @Import(GatewayTestWorkers.class)
    @Nested
    class WithApiKeysButNoAdminKey {
        @Autowired
        WebTestClient client;

        @Test
        void consoleApiIsForbiddenAndSaysHowToEnableIt() {
            client.get().uri("/console/api/state").header("Authorization", "Bearer sk-test").exchange()
                    .expectStatus().isForbidden()
                    .expectBody().jsonPath("$.error.code").isEqualTo("console_disabled")
                    .jsonPath("$.error.message").value(m -> assertThat((String) m).contains("ringserve.gateway.admin-keys"));
            client.get().uri("/console").exchange().expectStatus().isOk();
        }
    }

    @Test
    void modeFollowsTheConfiguredKeys(@TempDir Path dir) throws Exception {
        assertThat(new AdminKeyFilter(new ConsoleProperties(List.of("a"), null), true).mode()).isEqualTo(AdminKeyFilter.Mode.KEYS);
        assertThat(new AdminKeyFilter(new ConsoleProperties(List.of(), null), true).mode()).isEqualTo(AdminKeyFilter.Mode.DISABLED);
        assertThat(new AdminKeyFilter(new ConsoleProperties(List.of(), null), false).mode()).isEqualTo(AdminKeyFilter.Mode.OPEN);
        Path file = Files.writeString(dir.resolve("admin-keys"), "# admins\n\n  admin-1  \n");
        assertThat(new AdminKeyFilter(new ConsoleProperties(List.of(), file.toString()), true).mode()).isEqualTo(AdminKeyFilter.Mode.KEYS);
        Path empty = Files.writeString(dir.resolve("none"), "# nobody\n");
        assertThat(new AdminKeyFilter(new ConsoleProperties(List.of(), empty.toString()), false).mode()).isEqualTo(AdminKeyFilter.Mode.OPEN);
        assertThatThrownBy(() -> new AdminKeyFilter(new ConsoleProperties(List.of(), dir.resolve("missing").toString()), true))
                .isInstanceOf(UncheckedIOException.class).hasMessageContaining("ringserve.gateway.admin-keys-file");
    }
}
