package io.ringserve.gateway.console;

import io.ringserve.gateway.admission.AdmissionQueue;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.observability.GatewayMetrics;
import io.ringserve.gateway.security.ApiKeyFilter;
import io.ringserve.gateway.worker.WorkerPool;
import java.time.Duration;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.ApplicationListener;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.core.io.ClassPathResource;
import org.springframework.core.io.Resource;
import org.springframework.http.MediaType;
import org.springframework.http.codec.ServerSentEvent;
import org.springframework.web.reactive.function.BodyInserters;
import org.springframework.web.reactive.function.server.RequestPredicate;
import org.springframework.web.reactive.function.server.RouterFunction;
import org.springframework.web.reactive.function.server.RouterFunctions;
import org.springframework.web.reactive.function.server.ServerResponse;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import tools.jackson.databind.json.JsonMapper;

/**
 * The browser console: the playground page ({@code /}), the operations page ({@code /console}) and its
 * read-only API ({@code /console/api/state}, {@code /console/api/events}) behind the admin keys. The pages'
 * scripts and styles are static resources under {@code /ui/}.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(ConsoleProperties.class)
public class ConsoleConfiguration {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    /** How often {@code /console/api/events} sends a snapshot. */
    private static final MediaType HTML = MediaType.parseMediaType("text/html;charset=UTF-8");
    static final Duration EVENT_INTERVAL = Duration.ofSeconds(1);
    /** Pages load scripts, styles and data from this origin only; nothing inline, no frames. */
    static final String CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            + "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /** Completes when the application closes, ending every event stream so graceful shutdown need not wait. */
    private final Sinks.Empty<Void> closing = Sinks.empty();

    @Bean
    ApplicationListener<ContextClosedEvent> consoleEventsEndOnClose() {
        return new ApplicationListener<>() {
            @Override
            public void onApplicationEvent(ContextClosedEvent event) {
                closing.tryEmitEmpty();
            }
        };
    }

    @Bean
    RouterFunction<ServerResponse> consoleRoutes(WorkerPool pool, AdmissionQueue queue, GatewayProperties properties,
                                                 ConsoleProperties console, GatewayMetrics metrics, Environment environment) {
        boolean apiAuth = new ApiKeyFilter(properties.apiKeys(), properties.apiKeysFile(), metrics).enabled();
        AdminKeyFilter admin = new AdminKeyFilter(console, apiAuth);
        ConsoleState state = new ConsoleState(pool, queue, properties, metrics.registry(), apiAuth);
        // like the API: on the server port only, not on the management port
        RequestPredicate apiPort = request -> {
            String port = environment.getProperty("local.server.port");
            return port == null || request.localAddress().map(a -> a.getPort() == Integer.parseInt(port)).orElse(true);
        };
        RouterFunction<ServerResponse> api = RouterFunctions.route()
                .GET("/console/api/state", apiPort, r -> ServerResponse.ok().contentType(MediaType.APPLICATION_JSON)
                        .header("Cache-Control", "no-store").bodyValue(JSON.writeValueAsString(state.snapshot())))
                .GET("/console/api/events", apiPort, r -> events(state, closing.asMono()))
                .filter(admin)
                .build();
        return RouterFunctions.route()
                .GET("/", apiPort, r -> page("static/playground.html"))
                .GET("/console", apiPort, r -> page("static/console.html"))
                .GET("/console/", apiPort, r -> page("static/console.html"))
                .build()
                .and(api);
    }

    /** A snapshot at once, then one per {@link #EVENT_INTERVAL}, as {@code event: state} frames. */
    private static Mono<ServerResponse> events(ConsoleState state, Mono<Void> closing) {
        // Flux<Long> ticks → snapshot JSON → SSE frames; ends when the client goes away or the gateway closes
        Flux<ServerSentEvent<String>> frames = Flux.interval(Duration.ZERO, EVENT_INTERVAL)
                .map(i -> ServerSentEvent.builder(JSON.writeValueAsString(state.snapshot())).event("state").build())
                .takeUntilOther(closing);
        return ServerResponse.ok().contentType(MediaType.TEXT_EVENT_STREAM).header("Cache-Control", "no-store")
                .header("X-Accel-Buffering", "no")
                .body(BodyInserters.fromServerSentEvents(frames));
    }

    private static Mono<ServerResponse> page(String path) {
        Resource page = new ClassPathResource(path);
        return ServerResponse.ok().contentType(HTML)
                .header("Content-Security-Policy", CSP)
                .header("X-Content-Type-Options", "nosniff")
                .header("Referrer-Policy", "no-referrer")
                .header("Cache-Control", "no-cache")
                .body(BodyInserters.fromResource(page));
    }
}
