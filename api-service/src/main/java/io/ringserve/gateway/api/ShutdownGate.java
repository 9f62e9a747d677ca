package io.ringserve.gateway.api;

import org.springframework.context.ApplicationListener;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.http.HttpMethod;
import org.springframework.web.reactive.function.server.HandlerFilterFunction;
import org.springframework.web.reactive.function.server.HandlerFunction;
import org.springframework.web.reactive.function.server.ServerRequest;
import org.springframework.web.reactive.function.server.ServerResponse;
import reactor.core.publisher.Mono;

/**
 * Once the gateway begins to shut down (readiness already reports REFUSING_TRAFFIC), generation requests
 * that still arrive get a 503 {@code shutting_down} with {@code Retry-After} and {@code Connection: close},
 * so a client or load balancer retries them elsewhere; requests accepted before keep streaming to the end.
 * Without this gate a request could slip in between readiness going down and the listener closing and be
 * cut off when the process exits.
 */
public final class ShutdownGate implements HandlerFilterFunction<ServerResponse, ServerResponse>, ApplicationListener<ContextClosedEvent> {
    private volatile boolean closing;

    @Override
    public void onApplicationEvent(ContextClosedEvent event) {
        closing = true;
    }

    public boolean closing() {
        return closing;
    }

    @Override
    public Mono<ServerResponse> filter(ServerRequest request, HandlerFunction<ServerResponse> next) {
        if (closing && request.method() == HttpMethod.POST) {
            return OpenAiHandler.error(ApiException.unavailable("The server is shutting down; retry the request.", "shutting_down"), true);
        }
        return next.handle(request);
    }
}
