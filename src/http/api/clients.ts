import type { ApiRoute } from './route.ts';
import type { ApiDeps } from './index.ts';

// Placeholder while the clients management routes are written (issue 3).
export function clientRoutes(_deps: ApiDeps): ApiRoute[] {
  return [];
}
