"""What every request goes through before its route: the host it names, its body's size, its query
(each parameter taken, once), HEAD answered as GET, the methods a path allows, and the service's
path under a proxy's prefix."""
