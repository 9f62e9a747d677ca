package io.ringserve.worker.service;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/** Turns a {@link WorkerStartupException} into Spring Boot's "APPLICATION FAILED TO START" report. */
public final class WorkerStartupFailureAnalyzer extends AbstractFailureAnalyzer<WorkerStartupException> {
    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, WorkerStartupException cause) {
        return new FailureAnalysis("The worker cannot start: " + cause.getMessage(),
                "Fix the property " + cause.property() + " (command line --" + cause.property() + "=..., or application.yml).", cause);
    }
}
