import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { WorkerLifecycleEvent, WorkerLifecycleEventName } from './interfaces/worker-lifecycle.interface.js';
import { WorkerLifecycle } from './lifecycle/worker-lifecycle.js';
import type { ILoggerService } from './interfaces/logger.interface.js';
import type { ResolvedWorkerConfig } from './worker.config.js';
import { ON_WORKER_EVENT_METADATA, WORKER_CONFIG } from './worker.constants.js';
import { handlerSubscribed, requestScopedHandlerSkipped } from './worker.messages.js';
import { WorkerStartup } from './worker-startup.js';

/**
 * Finds @OnWorkerEvent() methods on the application's providers and controllers and subscribes them
 * to this module's lifecycle. Request-scoped providers have no instance to call: they are skipped
 * with a warning rather than silently.
 */
@Injectable()
export class WorkerExplorer implements OnModuleInit {
  private readonly logger: ILoggerService;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly lifecycle: WorkerLifecycle,
    @Inject(WORKER_CONFIG) config: ResolvedWorkerConfig,
    private readonly startup: WorkerStartup,
  ) {
    this.logger = config.logger ?? new Logger(WorkerExplorer.name);
  }

  onModuleInit(): Promise<void> {
    return this.startup.step(() => {
      for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()])
        this.explore(wrapper);
    });
  }

  private explore(wrapper: InstanceWrapper): void {
    // useFactory / useValue providers have no metatype worth reading: the instance's class is what
    // counts.
    const instance = wrapper.instance as Record<string, unknown> | undefined;
    if (!instance || typeof instance !== 'object') return;
    const prototype = Object.getPrototypeOf(instance) as object | null;
    if (!prototype) return;
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method = instance[methodName];
      if (typeof method !== 'function') continue;
      const names = this.reflector.get<WorkerLifecycleEventName[] | undefined>(ON_WORKER_EVENT_METADATA, method);
      if (!names) continue;
      const label = `${instance.constructor.name}.${methodName}`;
      if (!wrapper.isDependencyTreeStatic()) {
        this.logger.warn(requestScopedHandlerSkipped(label));
        continue;
      }
      this.lifecycle.subscribe(
        (event: WorkerLifecycleEvent) => (names.includes(event.name) ? method.call(instance, event) : undefined),
        label,
      );
      this.logger.debug?.(handlerSubscribed(names, label));
    }
  }
}
