// dependency-cruiser parses TypeScript with the `typescript` JS API, which TypeScript 7 (our type
// checker, the native port) does not ship yet. This preload points dependency-cruiser, and only
// it, at TypeScript 5 (devDependency `typescript-5`), so type-only imports are still seen.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, next) {
    const fromCruiser = context.parentURL?.includes('/node_modules/dependency-cruiser/');
    if (fromCruiser && (specifier === 'typescript' || specifier.startsWith('typescript/')))
      return next(specifier.replace(/^typescript/, 'typescript-5'), context);
    return next(specifier, context);
  },
});
