package io.ringserve.worker.service;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The worker service: the engine behind the gRPC protocol v1 ({@code ringserve.v1.Worker} and the standard
 * {@code grpc.health.v1.Health}) plus Actuator health probes and Prometheus metrics over HTTP.
 */
@SpringBootApplication
@ConfigurationPropertiesScan
public class WorkerApplication {

    /** Starts the service; the arguments are Spring Boot's ({@code --ringserve.worker.model=DIR}, {@code --server.port=N}). */
    public static ConfigurableApplicationContext start(String... args) {
        SpringApplication app = new SpringApplication(WorkerApplication.class);
        // SIGTERM closes the context: readiness goes down, in-flight requests drain, then the servers stop
        app.setRegisterShutdownHook(true);
        return app.run(args);
    }

    public static void main(String[] args) {
        start(args);
    }
}
