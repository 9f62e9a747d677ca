package io.ringserve.gateway.config;

import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.ringserve.gateway.admission.AdmissionQueue;
import io.ringserve.gateway.api.OpenAiHandler;
import io.ringserve.gateway.api.RequestValidator;
import io.ringserve.gateway.model.ServedModel;
import io.ringserve.gateway.observability.GatewayMetrics;
import io.ringserve.gateway.observability.WorkerStateMetrics;
import io.ringserve.gateway.observability.WorkersHealthIndicator;
import io.ringserve.gateway.api.ShutdownGate;
import io.ringserve.gateway.security.ApiKeyFilter;
import io.ringserve.gateway.security.KeyLimiter;
import io.ringserve.gateway.worker.WorkerChannelFactory;
import io.ringserve.gateway.worker.WorkerNode;
import io.ringserve.gateway.worker.WorkerPool;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.web.reactive.function.server.RequestPredicate;
import org.springframework.web.reactive.function.server.RouterFunction;
import org.springframework.web.reactive.function.server.RouterFunctions;
import org.springframework.web.reactive.function.server.ServerResponse;

/** Wires the gateway: model, worker pool, admission, handlers and routes. */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(GatewayProperties.class)
public class GatewayConfiguration {

    @Bean
    ServedModel servedModel(GatewayProperties properties) {
        return ServedModel.load(properties);
    }

    @Bean
    GatewayMetrics gatewayMetrics(MeterRegistry registry) {
        return new GatewayMetrics(registry);
    }

    @Bean
    WorkerChannelFactory nettyWorkerChannels() {
        return address -> NettyChannelBuilder.forTarget(address).usePlaintext().build();
    }

    @Bean(destroyMethod = "close")
    WorkerPool workerPool(GatewayProperties properties, WorkerChannelFactory channels,
                          ObjectProvider<CircuitBreakerRegistry> breakers, GatewayMetrics metrics, ServedModel model) {
        WorkerPool pool = new WorkerPool(properties.workers(), channels, breakers.getIfAvailable(CircuitBreakerRegistry::ofDefaults),
                model.tokenizer().sha256());
        pool.start();
        Gauge.builder("ringserve.gateway.workers.ready", pool, p -> p.nodes().stream().mapToInt(WorkerNode::stateValue).sum())
                .register(metrics.registry());
        Gauge.builder("ringserve.gateway.workers.known", pool, p -> p.nodes().size()).register(metrics.registry());
        return pool;
    }

    @Bean(destroyMethod = "close")
    WorkerStateMetrics workerStateMetrics(WorkerPool pool, GatewayProperties properties, GatewayMetrics metrics) {
        return new WorkerStateMetrics(pool, metrics.registry(), properties.workers().pollInterval());
    }

    @Bean
    AdmissionQueue admissionQueue(WorkerPool pool, GatewayProperties properties, GatewayMetrics metrics) {
        AdmissionQueue queue = new AdmissionQueue(pool, properties.queue(), metrics);
        Gauge.builder("ringserve.gateway.queue.size", queue, AdmissionQueue::size).register(metrics.registry());
        return queue;
    }

    @Bean
    WorkersHealthIndicator workersHealthIndicator(WorkerPool pool) {
        return new WorkersHealthIndicator(pool);
    }

    @Bean
    ShutdownGate shutdownGate() {
        return new ShutdownGate();
    }

    @Bean
    RouterFunction<ServerResponse> openAiRoutes(ServedModel model, GatewayProperties properties, WorkerPool pool,
                                                AdmissionQueue admission, GatewayMetrics metrics, Environment environment,
                                                ShutdownGate shutdownGate) {
        RequestValidator validator = new RequestValidator(model, properties, () -> pool.contextLength(model.contextLength()));
        OpenAiHandler handler = new OpenAiHandler(model, properties, validator, admission, metrics,
                new KeyLimiter(properties.limits(), metrics), pool);
        ApiKeyFilter auth = new ApiKeyFilter(properties.apiKeys(), properties.apiKeysFile(), metrics);
        // the API answers on the server port only, not on the management port
        RequestPredicate apiPort = request -> {
            String port = environment.getProperty("local.server.port");
            return port == null || request.localAddress().map(a -> a.getPort() == Integer.parseInt(port)).orElse(true);
        };
        return RouterFunctions.route()
                .GET("/v1/models", apiPort, handler::models)
                .POST("/v1/chat/completions", apiPort, handler::chat)
                .POST("/v1/completions", apiPort, handler::completion)
                // everything else under /v1: an OpenAI error body, not the framework's
                .route(org.springframework.web.reactive.function.server.RequestPredicates.path("/v1/**").and(apiPort),
                        handler::notFound)
                .filter(auth)
                .filter(shutdownGate)
                .build();
    }
}
