import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { WorkerModuleExtras, WorkerModuleOptions } from './interfaces/worker-module-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableWorkerModule,
  MODULE_OPTIONS_TOKEN: WORKER_MODULE_OPTIONS,
  OPTIONS_TYPE: WORKER_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: WORKER_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<WorkerModuleOptions>({ moduleName: 'Worker' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createWorkerOptions')
  .setExtras<WorkerModuleExtras>(
    {
      isGlobal: true,
      workerRepository: undefined,
      workerCreator: undefined,
      dataSourceToken: undefined,
      extraProviders: undefined,
    },
    (definition, extras) => ({
      ...definition,
      global: extras.isGlobal,
      providers: [...(definition.providers ?? []), ...(extras.extraProviders ?? [])],
    }),
  )
  .build();
