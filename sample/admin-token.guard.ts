import { timingSafeEqual } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';

/** DI token of the token that operators send as `Authorization: Bearer <token>`. */
export const ADMIN_TOKEN = Symbol('SAMPLE_ADMIN_TOKEN');

/**
 * Guards the operator endpoints (running a worker, the failed store, cancelling): they change or
 * reveal queued work, so an app must not expose them as it exposes its public API. A real app puts
 * its own authentication here (@nestjs/passport, a session, an API gateway); the sample compares a
 * bearer token in constant time.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(ADMIN_TOKEN) token: string) {
    this.expected = Buffer.from(token);
  }

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<{ headers: Record<string, string | string[] | undefined> }>()
      .headers.authorization;
    const match = typeof header === 'string' ? /^Bearer (.+)$/.exec(header) : null;
    if (!match) throw new UnauthorizedException({ error: 'Send the admin token as "Authorization: Bearer <token>"' });
    const given = Buffer.from(match[1]!);
    if (given.length !== this.expected.length || !timingSafeEqual(given, this.expected)) {
      throw new ForbiddenException({ error: 'Wrong admin token' });
    }
    return true;
  }
}
