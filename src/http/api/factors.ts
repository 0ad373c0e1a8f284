import type { ApiRoute } from './route.ts';
import type { ApiDeps } from './index.ts';

// Placeholder while the factors management routes are written (issue 3).
export function factorRoutes(_deps: ApiDeps): ApiRoute[] {
  return [];
}
