from flask_httpauth import HTTPBasicAuth, HTTPTokenAuth
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

db = SQLAlchemy()
migrate = Migrate()
login = LoginManager()
login.login_view = "auth.login"
login.login_message = "Please log in to access this page."
csrf = CSRFProtect()

basic_auth = HTTPBasicAuth()
token_auth = HTTPTokenAuth()
